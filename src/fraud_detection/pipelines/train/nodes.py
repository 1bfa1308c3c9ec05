"""Nodes of the `train` stage: the candidate model, trained on the latest window of labelled transactions."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import polars as pl

from fraud_detection.features.definitions import FEATURES, HEAVY_TAILED
from fraud_detection.features.matrix import feature_matrix
from fraud_detection.models.training import TrainConfig, fit_with_holdout
from fraud_detection.tracking.candidate import Candidate
from fraud_detection.tracking.lineage import frame_hash, params_hash

log = logging.getLogger(__name__)
EXAMPLE_ROWS = 5


def labelled_window(training_set: pl.DataFrame, window_days: int, label_delay_days: int) -> pl.DataFrame:
    """The `window_days` whole days before the labels' horizon: the last day of data + 1 - `label_delay_days`
    (later transactions' labels are not known yet)."""
    if training_set.is_empty():
        raise ValueError("the training set is empty; expected labelled transactions")
    day = pl.col("tx_datetime").dt.date()
    horizon = training_set["tx_datetime"].max().date() + timedelta(days=1 - label_delay_days)
    window = training_set.filter(day.is_between(horizon - timedelta(days=window_days), horizon, closed="left"))
    if window.is_empty():
        raise ValueError(
            f"no transaction in the {window_days} days before {horizon} (train.window_days={window_days}, "
            f"label delay {label_delay_days} days); expected the training set to reach further back"
        )
    return window


def train_candidate(
    training_set: pl.DataFrame, params: dict[str, Any], features: dict[str, Any], training_set_params: dict[str, Any]
) -> Candidate:
    window = labelled_window(training_set, params["window_days"], features["label_delay_days"])
    matrix, labels = feature_matrix(window), window["tx_fraud"].to_numpy()
    config = TrainConfig.from_params(params)
    result = fit_with_holdout(matrix, labels, FEATURES, HEAVY_TAILED, config, params["validation_fraction"])
    model_params = {"train": params, "label_delay_days": features["label_delay_days"]}
    log.info("best epoch %d: validation average precision %.4f", result.best_epoch, result.best_score)
    return Candidate(
        scorer=result.scorer,
        params=model_params,
        metrics={
            "best_val_average_precision": result.best_score,
            "best_epoch": result.best_epoch,
            "training_seconds": result.seconds,
            "samples_per_second": result.samples_per_second,
            "window_rows": len(labels),
            "window_frauds": int(labels.sum()),
        },
        history=result.history,
        tags={
            "data_hash": frame_hash(training_set),
            "params_hash": params_hash(model_params),
            "feature_service": training_set_params["feature_service"],
            "window_start": str(window["tx_datetime"].min().date()),
            "window_end": str(window["tx_datetime"].max().date()),
        },
        input_example=window.select(FEATURES).head(EXAMPLE_ROWS).to_pandas(),
        global_rank=result.global_rank,
    )
