"""Nodes of the `train` stage: the candidate model, trained on the latest window of labelled transactions that
the register stage's gate does not hold out."""

from __future__ import annotations

import logging

import polars as pl

from fraud_detection.evaluation.protocol import labelled_window
from fraud_detection.features.definitions import FEATURES, HEAVY_TAILED
from fraud_detection.features.matrix import feature_matrix
from fraud_detection.models.params import TrainParams
from fraud_detection.models.training import fit_with_holdout
from fraud_detection.registry.candidate import Candidate
from fraud_detection.registry.lineage import (
    as_tags,
    feature_definitions_hash,
    feature_schema,
    frame_hash,
    library_versions,
    params_hash,
)

log = logging.getLogger(__name__)
EXAMPLE_ROWS = 5


def train_candidate(
    training_set: pl.DataFrame, params: TrainParams, label_delay_days: int, feature_service: str
) -> Candidate:
    window = labelled_window(
        training_set, params.window_days, label_delay_days, before_horizon_days=params.holdout_days
    )
    matrix, labels = feature_matrix(window), window["tx_fraud"].to_numpy()
    result = fit_with_holdout(matrix, labels, FEATURES, HEAVY_TAILED, params)
    model_params = {"train": params.model_dump(mode="json"), "label_delay_days": label_delay_days}
    log.info("best epoch %d: validation average precision %.4f; %d boosted trees",
             result.best_epoch, result.best_score, result.trees_rounds)  # fmt: skip
    return Candidate(
        scorer=result.scorer,
        params=model_params,
        metrics={
            "best_val_average_precision": result.best_score,
            "best_epoch": result.best_epoch,
            "trees_rounds": result.trees_rounds,
            "training_seconds": result.seconds,
            "samples_per_second": result.samples_per_second,
            "window_rows": len(labels),
            "window_frauds": int(labels.sum()),
        },
        history=result.history,
        tags=as_tags(
            {
                "data_hash": frame_hash(training_set),
                "params_hash": params_hash(model_params),
                "feature_service": feature_service,
                "feature_service_version": feature_definitions_hash(),
                "feature_schema": feature_schema(window),
                "library_versions": library_versions(),
                "window_start": str(window["tx_datetime"].min().date()),
                "window_end": str(window["tx_datetime"].max().date()),
            }
        ),
        input_example=window.select(FEATURES).head(EXAMPLE_ROWS).to_pandas(),
        global_rank=result.global_rank,
    )
