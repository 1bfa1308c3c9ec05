"""The gate's measurements: a model's figures on the test window, and its single-row latency."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from fraud_detection.registry.gate import WindowFigures

if TYPE_CHECKING:
    import pandas as pd

LATENCY_CALLS = 200

# raw feature rows (a numpy matrix or a pandas frame) -> fraud probabilities
Predict = Callable[["np.ndarray | pd.DataFrame"], np.ndarray]


def single_row_latency_ms(predict: Predict, row: np.ndarray | pd.DataFrame) -> float:
    """Median wall time of scoring one row, after a warm-up call."""
    predict(row)
    times = []
    for _ in range(LATENCY_CALLS):
        start = time.perf_counter()
        predict(row)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def window_figures(predict: Predict, rows: np.ndarray | pd.DataFrame, labels: np.ndarray) -> WindowFigures:
    """`predict` measured on the window's `rows`/`labels`; latency on its first row."""
    return WindowFigures.measure(labels, np.asarray(predict(rows), dtype=np.float64),
                                 single_row_latency_ms(predict, rows[:1]))  # fmt: skip
