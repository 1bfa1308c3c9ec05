"""The train stage on the small training set, through the Kedro pipeline as `kedro run --pipelines train` hands it
the typed params: a candidate trained on the latest labelled window before the held-out days, with its lineage."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from fraud_detection.evaluation.protocol import labelled_window
from fraud_detection.features.definitions import FEATURES
from fraud_detection.features.matrix import feature_matrix
from fraud_detection.models.params import TrainParams
from fraud_detection.pipelines.train import create_pipeline
from fraud_detection.registry.candidate import Candidate
from fraud_detection.registry.lineage import feature_definitions_hash, frame_hash, params_hash
from fraud_detection.runtime.params import Params
from tests.conftest import changed
from tests.pipelines.kedro_catalog import param_entries


@pytest.fixture(scope="module")
def candidate(small_training_set: pl.DataFrame, small_train_params: TrainParams, params: Params) -> Candidate:
    output = MemoryDataset(copy_mode="assign")
    sized = changed(params, train=small_train_params.model_dump())
    catalog = DataCatalog(
        {"training_set": MemoryDataset(small_training_set), "candidate": output,
         **param_entries(create_pipeline(), sized)}
    )  # fmt: skip
    SequentialRunner().run(create_pipeline(), catalog)
    return output.load()


def test_the_candidate_carries_its_lineage(
    candidate: Candidate, small_training_set: pl.DataFrame, small_train_params: TrainParams, params: Params
) -> None:
    delay = params.features.label_delay_days
    assert candidate.params == {"train": small_train_params.model_dump(mode="json"), "label_delay_days": delay}
    tags = candidate.tags
    assert tags["feature_service"] == params.training_set.feature_service
    assert tags["feature_service_version"] == feature_definitions_hash()
    assert tags["data_hash"] == frame_hash(small_training_set)
    assert tags["params_hash"] == params_hash(candidate.params)
    assert [f["name"] for f in json.loads(tags["feature_schema"])] == list(FEATURES)
    assert all(isinstance(value, str) for value in tags.values()), "MLflow tags are strings"


def test_the_window_ends_before_the_held_out_days_and_the_label_delay(
    candidate: Candidate, small_training_set: pl.DataFrame, small_train_params: TrainParams, params: Params
) -> None:
    delay, holdout = params.features.label_delay_days, small_train_params.holdout_days
    last_day = small_training_set["tx_datetime"].max().date()
    start, end = date.fromisoformat(candidate.tags["window_start"]), date.fromisoformat(candidate.tags["window_end"])
    assert end == last_day - timedelta(days=delay + holdout)
    assert start == end - timedelta(days=small_train_params.window_days - 1)
    window = labelled_window(small_training_set, small_train_params.window_days, delay, before_horizon_days=holdout)
    assert candidate.metrics["window_rows"] == window.height
    assert candidate.metrics["window_frauds"] == window["tx_fraud"].sum() > 0
    assert 0 <= candidate.metrics["best_epoch"] < len(candidate.history) <= small_train_params.max_epochs


def test_the_scorer_gives_probabilities(candidate: Candidate, small_training_set: pl.DataFrame) -> None:
    scores = candidate.scorer.predict_proba(feature_matrix(small_training_set.head(1000)))
    assert scores.shape == (1000,) and np.all((scores >= 0) & (scores <= 1))
    assert list(candidate.input_example.columns) == list(FEATURES)
