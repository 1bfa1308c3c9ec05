"""Registration against a real MLflow (sqlite): a candidate becomes one version, however often it is registered."""

from __future__ import annotations

from pathlib import Path

import mlflow
import polars as pl
import pytest

from fraud_detection.pipelines.train.nodes import train_candidate
from fraud_detection.registry.candidate import CandidateDataset
from fraud_detection.registry.versions import find_version, register_candidate
from tests.conftest import changed


@pytest.fixture(scope="module")
def candidate_run(tmp_path_factory, small_training_set: pl.DataFrame, small_train_params) -> tuple[str, dict]:
    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    params = changed(small_train_params, max_epochs=1)
    candidate = train_candidate(small_training_set, params, 7, "v1")
    CandidateDataset(str(root / "candidate"), uri, "test", str(root / "artifacts")).save(candidate)
    return uri, candidate.run


def test_a_candidate_is_registered_once_with_its_lineage(candidate_run: tuple[str, dict]) -> None:
    uri, run = candidate_run
    client = mlflow.MlflowClient(uri)
    first = register_candidate(client, "fraud-detector", run, {"data_hash": "abc", "feature_service": "v1"})
    again = register_candidate(client, "fraud-detector", run, {"data_hash": "abc", "feature_service": "v1"})
    assert first.version == again.version == 1
    assert len(client.search_model_versions("name = 'fraud-detector'")) == 1
    assert first.tags["data_hash"] == "abc" and first.run_id == run["run_id"]
    assert find_version(client, "fraud-detector", "no-such-run") is None

    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model("models:/fraud-detector/1")
    assert model.metadata.get_input_schema() is not None


def test_each_registered_model_keeps_its_own_versions(candidate_run: tuple[str, dict], tmp_path: Path) -> None:
    uri, run = candidate_run
    client = mlflow.MlflowClient(uri)
    other = register_candidate(client, "other-model", run, {})
    assert other.version == 1 and other.name == "other-model"
