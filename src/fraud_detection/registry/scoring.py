"""The gate's measurements: a model's figures on the test window, and its single-row latency."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from fraud_detection.registry.gate import WindowFigures

LATENCY_CALLS = 200


def single_row_latency_ms(predict: Callable[[np.ndarray], np.ndarray], row: np.ndarray) -> float:
    """Median wall time of scoring one row (shape (1, n_features)), after a warm-up call."""
    predict(row)
    times = []
    for _ in range(LATENCY_CALLS):
        start = time.perf_counter()
        predict(row)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def window_figures(
    predict: Callable[[np.ndarray], np.ndarray], matrix: np.ndarray, labels: np.ndarray
) -> WindowFigures:
    """`predict` (raw feature rows -> probabilities) measured on the window `matrix`/`labels`."""
    return WindowFigures.measure(labels, np.asarray(predict(matrix), dtype=np.float64),
                                 single_row_latency_ms(predict, matrix[:1]))  # fmt: skip
