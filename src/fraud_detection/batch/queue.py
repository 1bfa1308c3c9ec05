"""What a fraud analyst gets from a batch: the per-card risk table and the investigation queue.

A card's risk for the day is the highest score among its transactions. The queue holds the `queue_size` riskiest
cards (card precision@k measures exactly this list), each with its riskiest transaction and the features that
drove that score: for every feature, the score drop when the feature alone is set to its training mean
(occlusion), the largest `drivers` drops kept.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from fraud_detection.batch.scoring import SCORE
from fraud_detection.features.definitions import FEATURES

Predict = Callable[[np.ndarray], np.ndarray]


def card_risk(scored: pl.DataFrame) -> pl.DataFrame:
    """customer_id, risk, transactions, riskiest_transaction (ties: the lowest transaction id)."""
    return (
        scored.sort([SCORE, "transaction_id"], descending=[True, False])
        .group_by("customer_id", maintain_order=True)
        .agg(
            pl.col(SCORE).first().alias("risk"),
            pl.len().alias("transactions"),
            pl.col("transaction_id").first().alias("riskiest_transaction"),
        )
        .sort(["risk", "customer_id"], descending=[True, False])
    )


def investigation_queue(
    rows: pl.DataFrame, scored: pl.DataFrame, size: int, drivers: int, predict: Predict, neutral: np.ndarray
) -> pl.DataFrame:
    """The `size` riskiest cards, ranked, with their riskiest transaction and its `drivers` strongest features."""
    top = card_risk(scored).head(size).with_row_index("rank", offset=1)
    picked = top.join(rows, left_on="riskiest_transaction", right_on="transaction_id").sort("rank")
    matrix = picked.select(FEATURES).to_numpy().astype(np.float64)
    effects = _occlusion(matrix, predict, neutral)
    order = np.argsort(-effects, axis=1, kind="stable")[:, :drivers]
    driven = [
        [{"feature": FEATURES[j], "value": float(matrix[i, j]), "effect": float(effects[i, j])} for j in order[i]]
        for i in range(len(matrix))
    ]
    why = ["; ".join(f"{d['feature']}={d['value']:.4g} ({d['effect']:+.3f})" for d in row) for row in driven]
    return picked.select(
        "rank", "customer_id", "risk", "transactions", pl.col("riskiest_transaction").alias("transaction_id"),
        "tx_datetime", "terminal_id", "tx_amount",
    ).with_columns(pl.Series("drivers", driven), pl.Series("why", why, dtype=pl.String))  # fmt: skip


def _occlusion(matrix: np.ndarray, predict: Predict, neutral: np.ndarray) -> np.ndarray:
    """effects[i, j]: score of row i minus its score with feature j at the neutral value."""
    n, f = matrix.shape
    if n == 0:
        return np.zeros((0, f))
    variants = np.repeat(matrix, f, axis=0)
    variants[np.arange(n * f), np.tile(np.arange(f), n)] = np.tile(neutral, n)
    base = predict(matrix)
    return base[:, None] - predict(variants).reshape(n, f)
