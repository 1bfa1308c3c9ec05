"""Nodes of the `evaluate` stage: the handbook's backtest of the candidate's recipe and of the baselines.

Each fold trains every model afresh on its training week (the candidate with the `train` params, early-stopping on
a holdout of that week) and scores its test week, without the cards already known to be compromised.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import polars as pl

from fraud_detection.evaluation import curves
from fraud_detection.evaluation.baselines import BASELINES, HANDBOOK_BASELINES
from fraud_detection.evaluation.handbook import HANDBOOK_FEATURES, handbook_features
from fraud_detection.evaluation.metrics import auc_roc, average_precision, card_precision_at_k
from fraud_detection.evaluation.params import EvaluateParams
from fraud_detection.evaluation.protocol import Fold, fold_test_set, fold_train_set, folds
from fraud_detection.features.definitions import FEATURES, HEAVY_TAILED
from fraud_detection.features.matrix import feature_matrix
from fraud_detection.models.params import TrainParams
from fraud_detection.models.training import fit_with_holdout
from fraud_detection.runtime.progress import progress

log = logging.getLogger(__name__)

CANDIDATE = "candidate"
SCORE_COLUMNS = ("transaction_id", "tx_datetime", "customer_id", "tx_fraud")


def backtest(
    training_set: pl.DataFrame, train: TrainParams, params: EvaluateParams, label_delay_days: int
) -> pl.DataFrame:
    """Test-set scores of every model on every fold: fold, test_start, model, transaction ids, label, score.

    A fold whose training or test week lacks frauds or genuine transactions is skipped with a warning; if every
    fold is skipped, the stage fails.
    """
    scored = []
    if set(params.baselines) & set(HANDBOOK_BASELINES):
        training_set = handbook_features(training_set, label_delay_days)
    for number, fold in enumerate(progress(_folds(params, label_delay_days), "backtest", unit="fold")):
        train_rows = fold_train_set(training_set, fold)
        test_rows = fold_test_set(training_set, fold, label_delay_days)
        reason = _unusable(train_rows, "training") or _unusable(test_rows, "test")
        if reason:
            log.warning("fold %d (test from %s) skipped: %s", number, fold.test_start, reason)
            continue
        for model, scores in _fold_scores(train_rows, test_rows, train, params.baselines).items():
            scored.append(
                test_rows.select(SCORE_COLUMNS).with_columns(
                    pl.lit(number).alias("fold"),
                    pl.lit(fold.test_start).alias("test_start"),
                    pl.lit(model).alias("model"),
                    pl.Series("score", scores, dtype=pl.Float64),
                )
            )
    if not scored:
        raise ValueError("every fold was skipped (see the warnings): no backtest; check evaluate's dates and data")
    return pl.concat(scored).select("fold", "test_start", "model", *SCORE_COLUMNS, "score")


def backtest_metrics(scores: pl.DataFrame, params: EvaluateParams) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per model, mean and standard deviation over folds (sample std, ddof=1; 0 for one fold) of AUC ROC,
    average precision and card precision@k; and each fold's figures (by the fold's first test day)."""
    cp_name = f"card_precision_at_{params.top_k}"
    per_fold: dict[str, dict[str, dict[str, float]]] = {}
    for (model, test_start), rows in scores.group_by("model", "test_start", maintain_order=True):
        labels, values = rows["tx_fraud"].to_numpy(), rows["score"].to_numpy()
        per_fold.setdefault(model, {})[str(test_start)] = {
            "auc_roc": auc_roc(labels, values),
            "average_precision": average_precision(labels, values),
            cp_name: card_precision_at_k(rows, params.top_k),
        }
    metrics = ("auc_roc", "average_precision", cp_name)
    summary = {
        model: {metric: _mean_std([fold[metric] for fold in by_fold.values()]) for metric in metrics}
        for model, by_fold in per_fold.items()
    }
    return {"backtest": summary}, per_fold


def backtest_plots(scores: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """ROC, precision-recall and score distribution per model, over the folds' test sets pooled."""
    plots = {}
    for (model,), rows in scores.group_by("model", maintain_order=True):
        labels, values = rows["tx_fraud"].to_numpy(), rows["score"].to_numpy()
        plots[f"roc_{model}"] = curves.roc(labels, values)
        plots[f"precision_recall_{model}"] = curves.precision_recall(labels, values)
        plots[f"scores_{model}"] = curves.score_distribution(labels, values)
    return plots


def _folds(params: EvaluateParams, label_delay_days: int) -> list[Fold]:
    return folds(params.first_test_start, params.folds, params.train_days, label_delay_days, params.test_days)


def _unusable(rows: pl.DataFrame, name: str) -> str | None:
    frauds = int(rows["tx_fraud"].sum())
    if frauds in {0, rows.height}:
        return f"its {name} set has {rows.height} transactions and {frauds} frauds; expected both classes"
    return None


def _fold_scores(
    train_rows: pl.DataFrame, test_rows: pl.DataFrame, train: TrainParams, baselines: list[str]
) -> dict[str, np.ndarray]:
    matrix, labels, test = feature_matrix(train_rows), train_rows["tx_fraud"].to_numpy(), feature_matrix(test_rows)
    fitted = fit_with_holdout(matrix, labels, FEATURES, HEAVY_TAILED, train)
    scores = {CANDIDATE: fitted.scorer.predict_proba(test)}
    for name in baselines:
        if name in HANDBOOK_BASELINES:
            hb_train, hb_test = (rows.select(HANDBOOK_FEATURES).to_numpy().astype(np.float64)
                                 for rows in (train_rows, test_rows))  # fmt: skip
            scores[name] = HANDBOOK_BASELINES[name](hb_train, labels, train.seed)(hb_test)
        else:
            scores[name] = BASELINES[name](matrix, labels, FEATURES, HEAVY_TAILED, train.seed)(test)
    return scores


def _mean_std(values: list[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0}
