"""Plot data for DVC: ROC and precision-recall curves and score distributions, thinned to a few hundred points."""

from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.metrics import precision_recall_curve, roc_curve

CURVE_POINTS = 200
SCORE_BINS = 50


def roc(labels: np.ndarray, scores: np.ndarray) -> pl.DataFrame:
    fpr, tpr, _ = roc_curve(labels, scores)
    keep = _thin(len(fpr))
    return pl.DataFrame({"false_positive_rate": fpr[keep], "true_positive_rate": tpr[keep]})


def precision_recall(labels: np.ndarray, scores: np.ndarray) -> pl.DataFrame:
    precision, recall, _ = precision_recall_curve(labels, scores)
    keep = _thin(len(recall))
    return pl.DataFrame({"recall": recall[keep], "precision": precision[keep]}).sort("recall")


def score_distribution(labels: np.ndarray, scores: np.ndarray) -> pl.DataFrame:
    """Share of frauds and of genuine transactions per score bin (each sums to 1)."""
    edges = np.linspace(0.0, 1.0, SCORE_BINS + 1)
    fraud, _ = np.histogram(scores[labels == 1], bins=edges)
    genuine, _ = np.histogram(scores[labels == 0], bins=edges)
    return pl.DataFrame({
        "score": (edges[:-1] + edges[1:]) / 2,
        "fraud_share": fraud / max(fraud.sum(), 1),
        "genuine_share": genuine / max(genuine.sum(), 1),
    })  # fmt: skip


def _thin(n: int) -> np.ndarray:
    """At most CURVE_POINTS indices, evenly spaced, first and last kept."""
    return np.unique(np.linspace(0, n - 1, min(n, CURVE_POINTS)).round().astype(int))
