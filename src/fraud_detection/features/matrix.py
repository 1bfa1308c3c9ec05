"""The model's input: the features of a table as one float64 matrix, columns in FEATURES order."""

from __future__ import annotations

import numpy as np
import polars as pl

from fraud_detection.features.definitions import FEATURES


def feature_matrix(frame: pl.DataFrame) -> np.ndarray:
    """Raises, naming the feature and the transaction, at the first missing or non-finite value."""
    missing = [name for name in FEATURES if name not in frame.columns]
    if missing:
        raise ValueError(f"the table lacks features {missing}; expected every one of {list(FEATURES)}")
    matrix = frame.select(FEATURES).to_numpy().astype(np.float64)
    bad = ~np.isfinite(matrix)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"feature {FEATURES[column]} of transaction {frame['transaction_id'][row]} is {matrix[row, column]}; "
            f"expected a finite number ({int(bad.sum())} values in all; check the features stage)"
        )
    return matrix
