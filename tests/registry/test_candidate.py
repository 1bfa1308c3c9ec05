"""The train stage's candidate: trained on the labelled window, logged to a real MLflow (sqlite) as one pyfunc with
signature, input example, per-epoch metrics and lineage tags, and written atomically where `register` takes it."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import mlflow
import numpy as np
import polars as pl
import pytest
import torch
from kedro.io import DatasetError

from fraud_detection.evaluation.protocol import labelled_window
from fraud_detection.features.definitions import FEATURES
from fraud_detection.features.matrix import feature_matrix
from fraud_detection.models.params import TrainParams
from fraud_detection.models.scorer import FraudScorer
from fraud_detection.pipelines.train.nodes import train_candidate
from fraud_detection.registry import candidate as candidate_module
from fraud_detection.registry.candidate import Candidate, CandidateDataset
from fraud_detection.runtime.params import ParamsError, checked_params
from tests.conftest import changed

LABEL_DELAY_DAYS = 7
FEATURE_SERVICE = "fraud_model_v1"


def _dataset(root: Path) -> CandidateDataset:
    return CandidateDataset(
        path=str(root / "candidate"),
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        experiment="test",
        artifact_location=str(root / "artifacts"),
    )


@pytest.fixture(scope="module")
def candidate(small_training_set: pl.DataFrame, small_train_params: TrainParams) -> Candidate:
    return train_candidate(small_training_set, small_train_params, LABEL_DELAY_DAYS, FEATURE_SERVICE)


def test_the_window_ends_where_labels_stop_being_known(small_training_set: pl.DataFrame) -> None:
    window = labelled_window(small_training_set, 21, 7)
    last_day = small_training_set["tx_datetime"].max().date()
    days = window["tx_datetime"].dt.date().unique().sort()
    assert (last_day - days.max()).days == 7 and days.len() == 21


def test_the_candidate_trains_before_the_days_held_out_for_the_gate(
    candidate: Candidate, small_training_set: pl.DataFrame, small_train_params: TrainParams
) -> None:
    last_day = small_training_set["tx_datetime"].max().date()
    start, end = (date.fromisoformat(candidate.tags[k]) for k in ("window_start", "window_end"))
    holdout = small_train_params.holdout_days
    assert (last_day - end).days == 7 + holdout, "label delay, then the held-out days"
    assert (end - start).days + 1 == small_train_params.window_days
    schema = json.loads(candidate.tags["feature_schema"])
    assert [f["name"] for f in schema] == list(FEATURES)
    assert set(json.loads(candidate.tags["library_versions"])) >= {"torch", "mlflow", "feast"}
    assert len(candidate.tags["feature_service_version"]) == 16


def test_the_candidate_is_logged_as_one_pyfunc_with_lineage(
    tmp_path: Path, candidate: Candidate, small_training_set: pl.DataFrame
) -> None:
    _dataset(tmp_path).save(candidate)
    saved = _dataset(tmp_path).load()
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(saved.run["run_id"])
    assert {"git_commit", "data_hash", "params_hash", "feature_service", "feature_schema"} <= set(run.data.tags)
    assert saved.tags["git_commit"] == run.data.tags["git_commit"] and saved.metrics["model_bytes"] > 1000
    assert run.data.tags["feature_service"] == "fraud_model_v1"
    assert run.data.params["train.hidden_sizes"] == "[16]" and run.data.params["train.trainer.accelerator"] == "cpu"
    history = client.get_metric_history(run.info.run_id, "val_average_precision")
    assert len(history) == len(candidate.history) >= 2, "one value per epoch"

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(saved.run["model_uri"])
    assert model.metadata.get_input_schema().input_names() == list(FEATURES)
    assert model.metadata.saved_input_example_info is not None
    rows = small_training_set.head(500)
    via_mlflow = model.predict(rows.select(FEATURES).to_pandas())["fraud_probability"].to_numpy()
    direct = saved.scorer.predict_proba(feature_matrix(rows))
    assert np.array_equal(via_mlflow, direct), "MLflow's pyfunc and the saved scorer are the same model"
    assert np.array_equal(direct, candidate.scorer.predict_proba(feature_matrix(rows)))


def test_training_is_reproducible(candidate: Candidate, small_training_set: pl.DataFrame, small_train_params) -> None:
    again = train_candidate(small_training_set, small_train_params, LABEL_DELAY_DAYS, FEATURE_SERVICE)
    assert again.history == candidate.history
    assert again.metrics["best_val_average_precision"] == candidate.metrics["best_val_average_precision"]
    assert again.tags == candidate.tags


def test_a_crash_while_saving_leaves_the_previous_candidate(
    tmp_path: Path, candidate: Candidate, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset = _dataset(tmp_path)
    dataset.save(candidate)
    before = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "candidate").rglob("*") if p.is_file()}

    def crash(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(mlflow.pyfunc, "log_model", crash)
    with pytest.raises(DatasetError, match="disk full"):
        dataset.save(candidate)
    after = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "candidate").rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".candidate")] == [], "no temporary leftovers"
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("test").experiment_id])
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED"]


def test_only_rank_zero_writes(tmp_path: Path, candidate: Candidate) -> None:
    other_rank = Candidate(**{**candidate.__dict__, "global_rank": 1})
    _dataset(tmp_path).save(other_rank)
    assert not (tmp_path / "candidate").exists() and not (tmp_path / "mlflow.db").exists()


def test_the_scorer_round_trips(tmp_path: Path, candidate: Candidate, small_training_set: pl.DataFrame) -> None:
    candidate.scorer.save(tmp_path / "scorer")
    matrix = feature_matrix(small_training_set.head(100))
    assert np.array_equal(
        FraudScorer.load(tmp_path / "scorer").predict_proba(matrix), candidate.scorer.predict_proba(matrix)
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.with_columns(pl.lit(0).alias("tx_fraud")), "0 frauds; expected both frauds and genuine"),
        (
            lambda f: f.with_columns(
                pl.when(pl.int_range(pl.len()) == 5)
                .then(float("nan"))
                .otherwise(pl.col("terminal_risk_7d"))
                .alias("terminal_risk_7d")
            ),
            "feature terminal_risk_7d of transaction .* is nan; expected a finite number",
        ),
    ],
)
def test_bad_training_data_is_refused_by_name(small_training_set, small_train_params, change, message) -> None:
    window = labelled_window(small_training_set, 21, 7)
    with pytest.raises(ValueError, match=message):
        train_candidate(change(window), small_train_params, LABEL_DELAY_DAYS, FEATURE_SERVICE)


def test_fewer_rows_than_a_batch_is_refused(small_training_set, small_train_params) -> None:
    params = changed(small_train_params, batch_size=1_000_000)
    with pytest.raises(ValueError, match="fewer than one batch"):
        train_candidate(small_training_set, params, LABEL_DELAY_DAYS, FEATURE_SERVICE)


@pytest.mark.parametrize(
    ("override", "message"),
    [({"trainer": {"gpus": 2}}, "train.trainer.gpus=2: unknown key; expected one of ['accelerator', 'devices', "),
     ({"optimizer": "adagrad"}, "train.optimizer='adagrad': expected 'adam' or 'adamw' or 'sgd'"),
     ({"validation_fraction": 1.5}, "train.validation_fraction=1.5: expected a number in (0, 1)"),
     ({"learning_rat": 0.1}, "train.learning_rat=0.1: unknown key; expected one of ['window_days', "),
     ({"batch_size": -5}, "train.batch_size=-5: expected an integer >= 1")],
)  # fmt: skip
def test_bad_train_params_are_refused_by_name(config_loader, override, message) -> None:
    """params.yaml is checked before anything trains (train_candidate takes the checked TrainParams)."""
    raw = config_loader["parameters"]
    train = {**raw["train"], **override}
    if "trainer" in override:
        train["trainer"] = {**raw["train"]["trainer"], **override["trainer"]}
    with pytest.raises(ParamsError, match=re.escape(f"params.yaml {message}")):
        checked_params({**raw, "train": train})


def test_the_candidate_module_needs_no_mlflow_at_import() -> None:
    assert "mlflow" not in candidate_module.__dict__, "MLflow is imported only when a run is logged"


def test_the_trainer_settings_come_from_params(small_training_set, small_train_params) -> None:
    """Mixed precision through params only (bf16 runs on CPUs too); the scorer still serves float32 weights."""
    params = changed(small_train_params, trainer={"precision": "bf16-mixed"}, max_epochs=1)
    candidate = train_candidate(small_training_set, params, LABEL_DELAY_DAYS, FEATURE_SERVICE)
    scores = candidate.scorer.predict_proba(feature_matrix(small_training_set.head(100)))
    assert np.isfinite(scores).all()
    assert all(w.dtype == torch.float32 for w in candidate.scorer.network.state_dict().values())
