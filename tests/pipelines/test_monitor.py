"""The monitor stage's nodes on simulated data with and without injected drift, real models in a real MLflow
registry: no drift gives `none`; amounts inflated from a day give `retrain` with the amount features flagged; a
new fraud pattern that a stale champion misses, with a previous champion that learned it, gives `rollback`."""

from __future__ import annotations

import json

import polars as pl
import pytest

from fraud_detection.features import polars_engine
from fraud_detection.feedback.outcomes import COLUMNS
from fraud_detection.models.params import TrainParams
from fraud_detection.pipelines.monitor.nodes import (
    build_windows,
    compute_drift,
    decide_action,
    drift_levels,
    evidently_reports,
    monitored_models,
    serving_health,
)
from fraud_detection.pipelines.train.nodes import train_candidate
from fraud_detection.registry.candidate import CandidateDataset
from fraud_detection.registry.promotion import force_promote
from fraud_detection.registry.registry import RegistryAddress
from fraud_detection.runtime.params import Params
from fraud_detection.serving.prediction_log import TABLE_SCHEMA
from fraud_detection.simulation.simulator import SimulationConfig, simulate_transactions
from tests.conftest import changed

MODEL = "fraud-detector"
DAYS = 90  # the reference window (28 days before a 7-day holdout and the label delay) starts past the 37-day
# warm-up of the terminal windows (30 days + the delay), which otherwise reads as drift
LABEL_DELAY_DAYS = 7
AMOUNT_FEATURES = {"tx_amount", "customer_avg_amount_1d", "customer_avg_amount_7d"}
# card testing (scenario 4): 20 cards a day, 3 small (1 to 5) night-time transactions each, far from home
CARD_TESTING = {"kind": "new_fraud_pattern", "customers_per_day": 20, "tx_per_card": 3, "min_amount": 1.0,
                "max_amount": 5.0, "night_end_hour": 5.0}  # fmt: skip


def features_of(params: Params, drift: list[dict]) -> pl.DataFrame:
    size = {"n_customers": 300, "n_terminals": 600, "n_days": DAYS}
    simulate = changed(params.simulate, profile="test", profiles={"test": size}, drift=drift)
    transactions = simulate_transactions(SimulationConfig.from_params(simulate))
    return polars_engine.transaction_features(transactions, polars_engine.state_tables(transactions, LABEL_DELAY_DAYS))


class Registry:
    """A temporary MLflow registry; `add` trains a candidate on `features` (its window ends `holdout_days` before
    the labels' horizon) and registers it as the new champion."""

    def __init__(self, root, train_params: TrainParams) -> None:
        self.root, self.uri, self.train = root, f"sqlite:///{root / 'mlflow.db'}", train_params
        self.address = RegistryAddress(self.uri, str(root / "registry.lock"))
        self.registry = self.address.open(MODEL, create=True)

    def add(self, features: pl.DataFrame, holdout_days: int, seed: int = 0) -> int:
        params = changed(self.train, holdout_days=holdout_days, seed=seed)
        candidate = train_candidate(features, params, LABEL_DELAY_DAYS, "v1")
        folder = self.root / f"candidate-{seed}-{holdout_days}"
        CandidateDataset(str(folder), self.uri, "monitor-tests", str(self.root / "artifacts")).save(candidate)
        version = int(self.registry.register(candidate.run, candidate.tags).version)
        force_promote(self.registry, version, "tests", "monitor scenario")
        return version


def monitor(features: pl.DataFrame, registry: Registry, params: Params, tmp_path) -> tuple[dict, pl.DataFrame]:
    models = monitored_models(registry.address, MODEL, {})
    windows = build_windows(features.lazy(), pl.DataFrame(), models, params.monitor, LABEL_DELAY_DAYS)
    drift = compute_drift(windows, params.monitor)
    decision = decide(drift, windows, params.monitor, params)
    return decision, drift_levels(drift, params.monitor)


NO_INGEST_PROBLEM = {"rows_read": 10, "rows_quarantined": 0, "quarantined_by_reason": {}}


def decide(drift: pl.DataFrame, windows, monitor_params, params: Params) -> dict:
    """The decision with nothing served yet: an empty prediction log, no labelled prediction."""
    health = serving_health(pl.DataFrame(schema=TABLE_SCHEMA), NO_INGEST_PROBLEM, windows, monitor_params)
    return decide_action(drift, windows, health, pl.DataFrame(schema=COLUMNS), monitor_params, params.register.gate,
                         params.evaluate.top_k, LABEL_DELAY_DAYS)  # fmt: skip


@pytest.fixture(scope="module")
def train_params(params: Params) -> TrainParams:
    return changed(params.train, window_days=28, hidden_sizes=[32], max_epochs=6, patience=3)


def test_no_drift_gives_none(params, train_params, tmp_path):
    features = features_of(params, [])
    registry = Registry(tmp_path, train_params)
    registry.add(features, holdout_days=7)
    decision, table = monitor(features, registry, params, tmp_path)
    assert decision["action"] == "none", decision["reasons"]
    assert decision["flagged"] == {} and set(table["level"]) == {"none"}
    assert decision["previous_champion"] is None and decision["champion"]["average_precision"] > 0.4
    assert decision["windows"]["current"]["rows"] > 0 and decision["source"] == "features"
    json.dumps(decision)  # what reports/monitoring.json holds


def test_inflated_amounts_give_retrain_with_the_amount_features_flagged(params, train_params, tmp_path):
    drift = [{"kind": "amount_inflation", "start_day": DAYS - 10, "factor": 2.0}]
    features = features_of(params, drift)
    registry = Registry(tmp_path, train_params)
    registry.add(features, holdout_days=7)  # trained on days before the inflation
    decision, table = monitor(features, registry, params, tmp_path)
    assert decision["action"] == "retrain", decision["reasons"]
    levels = dict(zip(table["column"], table["level"], strict=True))
    assert all(levels[name] in ("moderate", "severe") for name in AMOUNT_FEATURES), levels
    counts = {name for name in levels if name.startswith(("customer_nb_tx", "terminal_nb_tx", "tx_during"))}
    assert all(levels[name] == "none" for name in counts), levels  # how often cards are used did not change


def test_a_new_fraud_pattern_that_the_champion_misses_gives_rollback(params, train_params, tmp_path):
    drift = [{**CARD_TESTING, "start_day": DAYS - 20, "days": 14}]  # days 70..83: in the labelled window
    features = features_of(params, drift)
    registry = Registry(tmp_path, train_params)
    # the smallest holdout (train.holdout_days >= 1): each window ends a day before its labels' horizon
    learned = registry.add(features, holdout_days=1)  # trained on days 54..81, with the pattern: the previous champion
    stale = features.filter(pl.col("tx_datetime") < features["tx_datetime"].min() + pl.duration(days=DAYS - 13))
    champion = registry.add(stale, holdout_days=1, seed=1)  # trained on the days before the pattern appeared
    decision, _ = monitor(features, registry, params, tmp_path)
    assert decision["action"] == "rollback", decision["reasons"]
    assert decision["champion"]["version"] == str(champion)
    assert decision["previous_champion"]["version"] == str(learned)
    floors, margin = params.register.gate, params.monitor.guardrail.rollback_margin  # the register gate's floors
    champion_quality, previous = decision["champion"], decision["previous_champion"]
    assert champion_quality["auc_roc"] < floors.min_auc_roc <= previous["auc_roc"]
    assert previous["average_precision"] >= champion_quality["average_precision"] + margin


def test_the_run_page_holds_the_decision_our_table_and_both_evidently_reports(params, train_params, tmp_path):
    features = features_of(params, [])
    registry = Registry(tmp_path, train_params)
    registry.add(features, holdout_days=7)
    models = monitored_models(registry.address, MODEL, {})
    windows = build_windows(features.lazy(), pl.DataFrame(), models, params.monitor, LABEL_DELAY_DAYS)
    monitor_params = changed(params.monitor, evidently={"max_rows": 3000})
    drift = drift_levels(compute_drift(windows, monitor_params), monitor_params)
    decision = decide(compute_drift(windows, monitor_params), windows, monitor_params, params)
    files = evidently_reports(windows, drift, decision, monitor_params)
    day = features["tx_datetime"].max().date().isoformat()
    assert set(files) == {f"{day}.html", f"{day}-drift.json", f"{day}-quality.json"}
    page = files[f"{day}.html"]
    assert "action: none" in page and "<td>customer_nb_tx_30d</td>" in page and page.count("<iframe srcdoc=") == 2
    assert "ValueDrift(column=score,method=quantile_psi" in files[f"{day}-drift.json"]
    assert "RocAuc" in files[f"{day}-quality.json"]
