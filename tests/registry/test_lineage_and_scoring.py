"""The version's lineage and the gate's measurements, on the small simulated set (groundwork)."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from fraud_detection.evaluation.protocol import labelled_window
from fraud_detection.features.definitions import FEATURES
from fraud_detection.features.matrix import feature_matrix
from fraud_detection.pipelines.train.nodes import train_candidate
from fraud_detection.registry.lineage import as_tags, feature_schema, folder_bytes, library_versions
from fraud_detection.registry.scoring import window_figures


def test_the_feature_schema_has_every_feature_in_order_with_its_range(small_training_set: pl.DataFrame) -> None:
    schema = feature_schema(small_training_set)
    assert [f["name"] for f in schema] == list(FEATURES)
    amount = schema[FEATURES.index("tx_amount")]
    assert amount["type"] == "Float64"
    assert (
        amount["min"] == small_training_set["tx_amount"].min()
        and amount["max"] == small_training_set["tx_amount"].max()
    )
    assert json.loads(as_tags({"feature_schema": schema})["feature_schema"]) == schema


def test_library_versions_and_sizes(tmp_path) -> None:
    assert set(library_versions()) >= {"torch", "mlflow", "feast"}
    (tmp_path / "a").write_bytes(b"12345")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "c").write_bytes(b"123")
    assert folder_bytes(tmp_path) == 8


def test_window_figures_of_a_trained_model(small_training_set: pl.DataFrame, small_train_params) -> None:
    candidate = train_candidate(small_training_set, small_train_params, 7, "v1")
    window = labelled_window(small_training_set, 7, 7)
    matrix, labels = feature_matrix(window), window["tx_fraud"].to_numpy()
    figures = window_figures(candidate.scorer.predict_proba, matrix, labels)
    assert 0.5 < figures.auc_roc <= 1 and 0 < figures.average_precision <= 1
    assert 0 < figures.latency_ms < 50
    assert figures.high_score_share == pytest.approx(np.mean(candidate.scorer.predict_proba(matrix) > 0.5))
