"""The register stage: the gate's window is the latest labelled days the train stage held out; the candidate
becomes a version (once) carrying its lineage, gated on that window with params.yaml `register`."""

from __future__ import annotations

import json
from datetime import timedelta

import pandas as pd
import polars as pl
import pytest

from fraud_detection.evaluation.protocol import labelled_window
from fraud_detection.models.params import TrainParams
from fraud_detection.pipelines.register.nodes import gate_window, register_and_gate, version_lineage
from fraud_detection.pipelines.train.nodes import train_candidate
from fraud_detection.registry.candidate import Candidate, CandidateDataset
from fraud_detection.registry.registry import RegistryAddress
from fraud_detection.runtime.params import Params

BACKTEST = {"backtest": {
    "candidate": {"auc_roc": {"mean": 0.9, "std": 0.01}, "average_precision": {"mean": 0.6, "std": 0.02}},
    "logistic_regression": {"auc_roc": {"mean": 0.8, "std": 0.03}, "average_precision": {"mean": 0.5, "std": 0.04}},
}}  # fmt: skip


def days_of(frame: pl.DataFrame) -> list:
    return frame["tx_datetime"].dt.date().unique().sort().to_list()


def test_the_gate_window_is_the_last_labelled_days_held_out_of_training(
    small_training_set: pl.DataFrame, small_train_params: TrainParams, params: Params
) -> None:
    delay, holdout = params.features.label_delay_days, small_train_params.holdout_days
    window = gate_window(small_training_set, holdout, delay)
    last_labelled = small_training_set["tx_datetime"].max().date() - timedelta(days=delay)
    assert days_of(window) == [last_labelled - timedelta(days=holdout - 1 - i) for i in range(holdout)]
    on_those_days = small_training_set.filter(pl.col("tx_datetime").dt.date().is_in(days_of(window)))
    assert window.height == on_those_days.height, "every transaction of those days"
    trained_on = labelled_window(small_training_set, small_train_params.window_days, delay, before_horizon_days=holdout)
    assert days_of(trained_on)[-1] + timedelta(days=1) == days_of(window)[0], "right after the candidate's window"


def test_the_lineage_holds_the_tags_the_figures_and_the_backtest() -> None:
    candidate = Candidate(
        scorer=None, params={}, history=[], input_example=pd.DataFrame(), tags={"data_hash": "d1", "window_end": "x"},
        metrics={"training_seconds": 1.5, "model_bytes": 2048, "best_val_average_precision": 0.7, "window_rows": 99,
                 "best_epoch": 2},
    )  # fmt: skip
    lineage = version_lineage(candidate, "md5-of-the-training-set", BACKTEST)
    assert lineage["data_hash"] == "d1" and lineage["training_set_md5"] == "md5-of-the-training-set"
    assert lineage["model_bytes"] == "2048" and lineage["window_rows"] == "99" and "best_epoch" not in lineage
    assert lineage["backtest.auc_roc"] == "0.9" and lineage["backtest.average_precision"] == "0.6"
    assert json.loads(lineage["backtest"]) == BACKTEST["backtest"]["candidate"], "our model's figures, not a baseline's"
    assert all(isinstance(value, str) for value in lineage.values()), "MLflow tags are strings"


@pytest.fixture(scope="module")
def saved_candidate(tmp_path_factory, small_training_set: pl.DataFrame, small_train_params: TrainParams) -> tuple:
    """A candidate trained on the small set and saved (logged to MLflow) as the train stage's catalog does."""
    root = tmp_path_factory.mktemp("register")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    dataset = CandidateDataset(str(root / "candidate"), uri, "register-tests", str(root / "artifacts"))
    dataset.save(train_candidate(small_training_set, small_train_params, 7, "fraud_model_v1"))
    return dataset.load(), RegistryAddress(uri, str(root / "registry.lock"))


def test_the_candidate_is_registered_once_and_gated_on_the_window(
    saved_candidate: tuple, small_training_set: pl.DataFrame, small_train_params: TrainParams, params: Params
) -> None:
    candidate, address = saved_candidate
    window = gate_window(small_training_set, small_train_params.holdout_days, params.features.label_delay_days)
    lineage = version_lineage(candidate, "md5-of-the-training-set", BACKTEST)
    report = register_and_gate(candidate, lineage, window, address, params.register)
    assert report["model"] == params.register.model_name and report["version"] == 1
    assert report["champion_before"] is None, "the first model faces the floors only"
    first, last = days_of(window)[0], days_of(window)[-1]
    assert report["window"] == {"start": str(first), "end": str(last), "rows": window.height,
                                "frauds": int(window["tx_fraud"].sum())}  # fmt: skip
    alias = report["decision"]["alias"]
    assert report["aliases"] == {alias: 1}
    gate, checks = params.register.gate, report["decision"]["checks"]
    assert {c["name"]: c["threshold"] for c in checks} == {
        "auc_roc_floor": gate.min_auc_roc, "average_precision_floor": gate.min_average_precision,
        "high_score_share_ceiling": gate.max_high_score_share, "high_score_share_floor": gate.min_high_score_share,
        "latency_budget": gate.max_latency_ms,
    }, "params.yaml register.gate's checks, no champion to compare with"  # fmt: skip
    assert (alias == "champion") == all(c["passed"] for c in checks)
    version = address.open(params.register.model_name).version(1)
    assert version.tags["training_set_md5"] == "md5-of-the-training-set" and version.tags["gate.alias"] == alias
    again = register_and_gate(candidate, lineage, window, address, params.register)
    assert again["version"] == 1, "a re-run finds the version it registered"
