"""Metrics of a scored test set: AUC ROC, average precision (scikit-learn's), and card precision@k."""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.metrics import average_precision_score, roc_auc_score


def auc_roc(labels: np.ndarray, scores: np.ndarray) -> float:
    _check_both_classes(labels)
    return float(roc_auc_score(labels, scores))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    _check_both_classes(labels)
    return float(average_precision_score(labels, scores))


def card_precision_at_k(scored: pl.DataFrame, k: int = 100) -> float:
    """The handbook's card precision@k over the test days, in order.

    Each day: a card's score is its highest transaction score of the day and it is fraudulent if any of its
    transactions of the day is; cards detected on earlier days (fraudulent and in an earlier day's top k) are left
    out; the precision is the number of fraudulent cards among the day's top k, divided by k. Mean over the days.
    `scored` needs tx_datetime, customer_id, tx_fraud and score.
    """
    cards = (
        scored.group_by(pl.col("tx_datetime").dt.date().alias("day"), "customer_id")
        .agg(pl.col("score").max(), pl.col("tx_fraud").max())
        .sort("day", "score", "customer_id", descending=[False, True, False])
    )
    detected: set[int] = set()
    precisions = []
    for (_,), day_cards in cards.group_by("day", maintain_order=True):
        top = day_cards.filter(~pl.col("customer_id").is_in(list(detected))).head(k)
        hits = top.filter(pl.col("tx_fraud") == 1)["customer_id"].to_list()
        precisions.append(len(hits) / k)
        detected.update(hits)
    return float(np.mean(precisions)) if precisions else float("nan")


def _check_both_classes(labels: np.ndarray) -> None:
    classes = np.unique(labels)
    if len(classes) != 2:
        raise ValueError(f"the test set has labels {classes.tolist()}; expected both 0 and 1 to compute the metric")
