"""Baselines trained and scored like the candidate, for context: logistic regression on the candidate's
preprocessing, and a gradient-boosted tree ensemble (scikit-learn's histogram GBDT) on the raw features; and the
handbook's reference models on the handbook's own features (the yardstick: evaluation/handbook.py)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from fraud_detection.evaluation import handbook
from fraud_detection.models.preprocessing import Standardizer

Scorer = Callable[[np.ndarray], np.ndarray]


def logistic_regression(
    matrix: np.ndarray, labels: np.ndarray, features: tuple[str, ...], log_features: tuple[str, ...], seed: int
) -> Scorer:
    standardizer = Standardizer.fit(matrix, features, log_features)
    model = LogisticRegression(max_iter=1000, random_state=seed).fit(standardizer.transform(matrix), labels)
    return lambda rows: model.predict_proba(standardizer.transform(rows))[:, 1]


def gradient_boosting(
    matrix: np.ndarray, labels: np.ndarray, features: tuple[str, ...], log_features: tuple[str, ...], seed: int
) -> Scorer:
    model = HistGradientBoostingClassifier(random_state=seed).fit(matrix, labels)
    return lambda rows: model.predict_proba(rows)[:, 1]


BASELINES: dict[str, Callable[..., Scorer]] = {
    "logistic_regression": logistic_regression,
    "gradient_boosting": gradient_boosting,
}
# The handbook's features and models (evaluation/handbook.py): model name -> (matrix, labels, seed) -> scorer
HANDBOOK_BASELINES: dict[str, Callable[..., Scorer]] = {
    "handbook_reference_lr": handbook.logistic_regression,
    "handbook_reference_rf": handbook.random_forest,
}
