"""Rollouts end to end, driven by `fraud-detection traffic run --in-process` (which ticks the rollout after every
simulated day) in a world of 2,000 customers: a clearly better candidate ramps from shadow to 100 % and becomes
champion; a clearly worse one is aborted at 5 % or less, the champion untouched; a planted assignment bug (the
candidate served to twice its share) is caught by the sample ratio mismatch check and halts the ramp. (The worse
one is caught in shadow, where every customer's frauds judge it; the 1 % step of this world carries a customer with
a fraud every few days.) And through the commands: a rollout reported, judged and stopped (`rollout
status|tick|abort`); a split of three variants served without a restart and analyzed on its own rows (`experiment
start|analyze|stop`).

The better and worse models are the same two, their roles swapped: one trained on the world's labelled days, one on
the same days with their labels shuffled (it approves everything)."""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from fraud_detection.datasets import PartitionedParquetDataset
from fraud_detection.feature_store.dataset import FeatureStoreDataset, apply_and_materialize
from fraud_detection.feature_store.definitions import SOURCE_PATHS
from fraud_detection.feature_store.online import day_start
from fraud_detection.features import polars_engine
from fraud_detection.features.definitions import MICROS_PER_DAY
from fraud_detection.registry.candidate import Candidate, CandidateDataset
from fraud_detection.registry.registry import ROLLBACK, RegistryAddress
from fraud_detection.serving.prediction_log import read_table
from fraud_detection.simulation.simulator import SimulationConfig, simulate_transactions
from tests.conftest import PROJECT_ROOT, changed

pytestmark = pytest.mark.slow
MODEL = "fraud-detector"
SIZE = {"n_customers": 2000, "n_terminals": 4000, "n_days": 35}
LABEL_DELAY_DAYS = 3  # the world's label delay: a step's outcomes mature in 3 days (7 by default)
GUARDRAILS = {"false_decline_rate": 0.01, "latency_p99_ms": 20.0, "degraded_rate": 0.01, "fallback_rate": 0.01}


@dataclass(frozen=True)
class Models:
    good: Candidate  # trained on the world's labelled days
    shuffled: Candidate  # the same days, labels shuffled


@pytest.fixture(scope="module")
def world(tmp_path_factory, small_simulate_params) -> Path:
    """A project of 35 simulated days (2,000 customers): its transactions ingested, the online store materialized
    up to the last day, params.yaml describing the world (the traffic continues it)."""
    root = tmp_path_factory.mktemp("rollout_world") / "project"
    root.mkdir()
    for name in ("pyproject.toml", "params.yaml", ".telemetry"):
        shutil.copy2(PROJECT_ROOT / name, root / name)
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    simulate = changed(small_simulate_params, profiles={"small": SIZE}, start_date="2018-04-01", seed=5)
    transactions = simulate_transactions(SimulationConfig.from_params(simulate))
    tables = polars_engine.with_stored_intraday(polars_engine.state_tables(transactions, LABEL_DELAY_DAYS))
    for name, table in tables._asdict().items():
        (root / SOURCE_PATHS[name]).parent.mkdir(parents=True, exist_ok=True)
        table.write_parquet(root / SOURCE_PATHS[name])
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["simulate"].update(profile="small", seed=5, start_date="2018-04-01")
    params["simulate"]["profiles"]["small"] = SIZE
    params["features"]["label_delay_days"] = LABEL_DELAY_DAYS
    params["rollout"].update(min_labelled=100, guardrails=GUARDRAILS)
    params["experiment"]["bootstrap_replicates"] = 50
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with _inside(root):
        store = FeatureStoreDataset(
            "data/05_feature_store/registry.db",
            {"type": "sqlite", "path": "data/05_feature_store/online.db"},
            {"type": "duckdb"},
        ).load()  # fmt: skip (the catalog's entry)
        apply_and_materialize(store, day_start(transactions["tx_datetime"].dt.epoch("us").max() // MICROS_PER_DAY))
        PartitionedParquetDataset("data/02_intermediate/transactions", "tx_datetime").save(transactions)
    features = polars_engine.transaction_features(transactions, tables)
    features.write_parquet(root.parent / "features.parquet")  # the models' training set, outside the project
    return root


@contextmanager
def _inside(root: Path):
    """The project root as the working directory (the catalog's paths are relative to it)."""
    before = Path.cwd()
    os.chdir(root)
    try:
        yield
    finally:
        os.chdir(before)


@pytest.fixture(scope="module")
def models(world: Path, small_train_params) -> Models:
    from fraud_detection.pipelines.train.nodes import train_candidate

    features = pl.read_parquet(world.parent / "features.parquet")
    shuffled = features.with_columns(
        tx_fraud=pl.Series(np.random.default_rng(0).permutation(features["tx_fraud"].to_numpy()))
    )
    params = changed(small_train_params, window_days=21, holdout_days=3, max_epochs=3)
    return Models(train_candidate(features, params, LABEL_DELAY_DAYS, "v1"),
                  train_candidate(shuffled, params, LABEL_DELAY_DAYS, "v1"))  # fmt: skip


class Scenario:
    """A copy of the world with a registry holding a champion (version 1) and a candidate (version 2, the
    challenger, as the register stage leaves a passing one)."""

    def __init__(self, world: Path, destination: Path, champion: Candidate, candidate: Candidate) -> None:
        self.root = destination / "project"
        shutil.copytree(world, self.root)
        uri = f"sqlite:///{self.root / 'data/mlflow/mlflow.db'}"
        self.address = RegistryAddress(uri, str(self.root / "data/mlflow/registry.lock"))
        registry = self.address.open(MODEL, create=True)
        for number, model in enumerate((champion, candidate), start=1):
            folder = self.root / f"candidate{number}"
            CandidateDataset(str(folder), uri, "fraud-detection", str(self.root / "artifacts")).save(model)
            registry.register(json.loads((folder / "candidate.json").read_text())["run"], {"git_commit": "test"})
        registry.move("champion", 1, "promote", "tests", "the scenario's champion")
        registry.move("challenger", 2, "gate", "tests", "the register stage's passing candidate")

    def cli(self, *args: str) -> int:
        from fraud_detection.cli import main

        with _inside(self.root):
            return main(list(args))

    def registry(self):
        return self.address.open(MODEL)

    def served(self) -> pl.DataFrame:
        return read_table(self.root / "data/08_serving/predictions").filter(pl.col("role") == "served")


def _steps_taken(registry) -> list[tuple[str, int, str]]:
    return [(e.action, e.experiment["steps"][min(e.experiment["step"], len(e.experiment["steps"]) - 1)],
             e.experiment["status"]) for e in registry.history() if e.experiment]  # fmt: skip


def test_a_clearly_better_candidate_ramps_from_shadow_to_champion(world, models, tmp_path, capsys) -> None:
    scenario = Scenario(world, tmp_path, champion=models.shuffled, candidate=models.good)
    assert scenario.cli("rollout", "--actor", "tests", "start") == 0  # the challenger, params.yaml's steps
    assert scenario.cli("traffic", "run", "--days", "30", "--in-process") == 0
    printed = capsys.readouterr().out
    registry = scenario.registry()
    state = registry.experiment()
    assert state["status"] == "promoted", printed
    assert registry.alias_version("champion") == 2 and registry.alias_version("challenger") is None
    taken = _steps_taken(registry)
    assert [percent for _, percent, _ in taken] == [0, 1, 5, 25, 50, 100], taken
    assert [action for action, _, _ in taken] == ["rollout-start", *["rollout-step"] * 4, "rollout-promote"]
    promotion = [e for e in registry.history() if e.alias == "champion"][-1]
    assert (promotion.action, promotion.version, promotion.previous) == ("rollout", 2, 1)

    served = scenario.served().sort("tx_datetime")
    shares = served.group_by("model_version").len()
    assert set(shares["model_version"]) == {"1", "2"}
    after = served.filter(pl.col("tx_datetime") > pl.lit(state["step_started"]).str.to_datetime(time_zone="UTC"))
    assert after.height and set(after["model_version"]) == {"2"}, "after the promotion the candidate serves all"
    # the promotion is a champion move like any other: one rollback returns the previous champion
    assert scenario.cli("registry", "rollback", "--reason", "tests") == 0
    assert registry.alias_version("champion") == 1 and registry.history()[-1].action == ROLLBACK


def test_a_clearly_worse_candidate_is_aborted_at_five_percent_or_less(world, models, tmp_path, capsys) -> None:
    scenario = Scenario(world, tmp_path, champion=models.good, candidate=models.shuffled)
    assert scenario.cli("rollout", "start") == 0  # params.yaml's steps: shadow first
    assert scenario.cli("traffic", "run", "--days", "8", "--in-process") == 0
    printed = capsys.readouterr().out
    registry = scenario.registry()
    state = registry.experiment()
    assert state["status"] == "aborted", printed
    assert state["steps"][state["step"]] <= 5
    assert state["variants"] == {"champion": 1.0} and registry.alias_version("champion") == 1
    [aborted] = [e for e in registry.history() if e.action == "rollout-abort"]
    assert "fraud_amount_recall breached" in aborted.reason
    assert "fraud_amount_recall breached" in printed, "the traffic run says why"
    served = scenario.served()
    assert (served["model_version"] == "2").mean() <= 0.05, "the candidate served its step's share at most"
    last_day = served.filter(pl.col("tx_datetime").dt.date() == served["tx_datetime"].max().date())
    assert set(last_day["model_version"]) == {"1"}, "after the abort the champion serves everyone"


def test_a_planted_assignment_bug_is_caught_by_the_sample_ratio_check(world, models, tmp_path, monkeypatch,
                                                                      capsys) -> None:  # fmt: skip
    from fraud_detection.serving import routing

    scenario = Scenario(world, tmp_path, champion=models.good, candidate=models.good)
    real_lanes = routing.lanes
    # the bug: the service gives the candidate twice the share the design says
    monkeypatch.setattr(routing, "lanes", lambda shares: real_lanes(
        {name: share * 2 if i else share for i, (name, share) in enumerate(shares.items())}))  # fmt: skip
    assert scenario.cli("rollout", "start", "--steps", "1,5,25,50,100") == 0
    assert scenario.cli("traffic", "run", "--days", "3", "--in-process") == 0
    printed = capsys.readouterr().out
    registry = scenario.registry()
    state = registry.experiment()
    assert state["status"] == "aborted" and state["steps"][state["step"]] == 1, printed
    [aborted] = [e for e in registry.history() if e.action == "rollout-abort"]
    assert "sample ratio mismatch" in aborted.reason
    assert registry.alias_version("champion") == 1


def test_the_rollout_commands_report_judge_and_stop_a_rollout(world, models, tmp_path, capsys) -> None:
    scenario = Scenario(world, tmp_path, champion=models.good, candidate=models.good)
    assert scenario.cli("rollout", "status") == 0 and "no rollout yet" in capsys.readouterr().out
    assert scenario.cli("rollout", "start", "7") == 2 and "has no version 7" in capsys.readouterr().err
    assert scenario.cli("rollout", "start", "--steps", "5,100") == 0
    assert scenario.cli("traffic", "run", "--days", "4", "--in-process", "--no-rollout-tick") == 0
    capsys.readouterr()
    assert scenario.cli("rollout", "status", "--json") == 0
    status = json.loads(capsys.readouterr().out)
    assert status["state"]["status"] == "running" and status["state"]["variants"] == {
        "champion": 0.95,
        "challenger": 0.05,
    }
    checks = {check["metric"]: check for check in status["next_tick"]["checks"]}
    assert set(checks) == {"fraud_amount_recall", *GUARDRAILS}, "the primary metric and every guardrail judged"
    assert all(check["customers"] > 0 and check["harm_low"] <= check["harm_high"] for check in checks.values())
    assert [event["action"] for event in status["history"]] == ["rollout-start"]
    assert scenario.registry().experiment() == status["state"], "status changes nothing"
    assert scenario.cli("rollout", "tick", "--json") == 0
    ticked = json.loads(capsys.readouterr().out)
    assert ticked["verdict"]["action"] in {"advance", "wait"} and ticked["state"] == scenario.registry().experiment()
    assert scenario.cli("rollout", "--actor", "oncall", "abort", "--reason", "enough") == 0
    aborted = scenario.registry().history()[-1]
    assert (aborted.action, aborted.actor) == ("rollout-abort", "oncall") and aborted.reason.endswith("enough")
    capsys.readouterr()
    assert scenario.cli("rollout", "abort") == 2 and "no rollout is running" in capsys.readouterr().err


def test_a_split_is_served_without_a_restart_and_analyzed_on_its_own_rows(world, models, tmp_path, capsys) -> None:
    from fraud_detection.feedback.labels import LabelEventsDataset
    from fraud_detection.feedback.outcomes import labelled_predictions

    scenario = Scenario(world, tmp_path, champion=models.good, candidate=models.good)
    assert scenario.cli("traffic", "run", "--days", "1", "--in-process") == 0  # the champion alone
    shares = "champion=0.8,challenger=0.1,2=0.1"  # an alias, another alias, a version number
    assert scenario.cli("experiment", "start", "abc-1", "--shares", shares) == 0
    assert scenario.cli("traffic", "run", "--days", "2", "--in-process") == 0
    served = scenario.served()
    started = served.filter(pl.col("variant") != "champion")["tx_datetime"].min()
    during = served.filter(pl.col("tx_datetime") >= started)
    assert set(during["variant"]) == {"champion", "challenger", "2"}
    assert during.filter(pl.col("variant") == "2").height / during.height == pytest.approx(0.1, abs=0.03)

    # the feedback stage's table, then the analysis with the split's design and rows by default
    labels = LabelEventsDataset(folder=str(scenario.root / "data/08_serving/labels")).load()
    table = labelled_predictions(read_table(scenario.root / "data/08_serving/predictions"), labels)
    (scenario.root / "data/09_feedback").mkdir(parents=True, exist_ok=True)
    table.write_parquet(scenario.root / "data/09_feedback/labelled_predictions.parquet")
    capsys.readouterr()
    assert scenario.cli("experiment", "analyze", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["variants"]) == ["champion", "challenger", "2"] and not report["srm"]["mismatch"]
    assert sum(v["transactions"] for v in report["variants"].values()) < served.height, "the split's rows only"
    assert (scenario.root / "reports/experiments/abc-1.html").is_file()

    assert scenario.cli("experiment", "stop", "--reason", "enough") == 0
    assert scenario.cli("traffic", "run", "--days", "1", "--in-process") == 0
    last_day = scenario.served().filter(pl.col("tx_datetime") > served["tx_datetime"].max())
    assert last_day.height and set(last_day["variant"]) == {"champion"}, "stopped: params.yaml serve.ab again"
