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

LATENCY_ROUNDS, LATENCY_CALLS = 5, 50  # rounds of single-row calls; the figure is the quickest round's median

# raw feature rows (a numpy matrix or a pandas frame) -> fraud probabilities
Predict = Callable[["np.ndarray | pd.DataFrame"], np.ndarray]


def single_row_latency_ms(predict: Predict, row: np.ndarray | pd.DataFrame) -> float:
    """Wall time of scoring one row, after a warm-up call: the median of each of `LATENCY_ROUNDS` rounds, and of
    those the lowest. Other processes only ever slow a round down (the advice of Python's `timeit`), so a machine
    busy with other work for a while does not fail a model that meets the budget on its own: one round of five on
    a quiet moment suffices. A model that is slow in every round still fails."""
    predict(row)
    medians = []
    for _ in range(LATENCY_ROUNDS):
        times = []
        for _ in range(LATENCY_CALLS):
            start = time.perf_counter()
            predict(row)
            times.append(time.perf_counter() - start)
        medians.append(statistics.median(times))
    return min(medians) * 1000


def window_figures(predict: Predict, rows: np.ndarray | pd.DataFrame, labels: np.ndarray) -> WindowFigures:
    """`predict` measured on the window's `rows`/`labels`; latency on its first row."""
    return WindowFigures.measure(labels, np.asarray(predict(rows), dtype=np.float64),
                                 single_row_latency_ms(predict, rows[:1]))  # fmt: skip
