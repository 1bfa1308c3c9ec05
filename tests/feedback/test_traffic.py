"""`fraud-detection traffic run --in-process` on a serving project of 45 simulated days: the next days are served
in time order through the service's detector, every served vector equals the offline features of the same
transactions, labels come from both sources once each, and a stopped run resumes without sending twice."""

from __future__ import annotations

import dataclasses
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from fraud_detection.datasets import ParquetDataset, PartitionedParquetDataset
from fraud_detection.features import polars_engine
from fraud_detection.features.definitions import FEATURES
from fraud_detection.runtime.project import project_params
from fraud_detection.serving.prediction_log import read_json_lines
from fraud_detection.simulation.simulator import SimulationConfig, compromise_schedule
from tests.serving.conftest import ServingProject, serving_project

__all__ = ["serving_project"]
DAYS = 45
COMPROMISES = "data/01_raw/simulated_compromises.parquet"


@pytest.fixture(scope="module")
def traffic_project(serving_project: ServingProject, tmp_path_factory, transactions) -> ServingProject:
    return _copy(serving_project, tmp_path_factory, transactions)


def _copy(serving_project: ServingProject, tmp_path_factory, transactions) -> ServingProject:
    """The serving project, copied, with params.yaml describing its simulation and its ingested transactions."""
    root = tmp_path_factory.mktemp("traffic") / "project"
    shutil.copytree(serving_project.root, root)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["simulate"].update(profile="small", seed=3, start_date="2018-04-01")
    params["simulate"]["profiles"]["small"] = {"n_customers": 300, "n_terminals": 600, "n_days": DAYS}
    params["feedback"]["investigations_per_day"] = 10
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    project = ServingProject(root, serving_project.last_day, serving_project.champion, serving_project.challenger)
    with project.inside():
        PartitionedParquetDataset("data/02_intermediate/transactions", "tx_datetime").save(transactions)
        ParquetDataset(COMPROMISES).save(compromise_schedule(_config(root)).as_frame())  # as the simulate stage does
    return project


def _config(root: Path) -> SimulationConfig:
    return SimulationConfig.from_params(project_params(root=root).simulate)


def _cli(*args: str) -> int:
    from fraud_detection.cli import main

    return main(["traffic", "run", *args])


@dataclass(frozen=True)
class Played:
    root: Path
    sent_before_stop: list[int]  # sent by the run that was stopped


@pytest.fixture(scope="module")
def played(traffic_project: ServingProject) -> Played:
    """Two days played, the second stopped after two chunks and resumed."""
    from fraud_detection.cli.traffic import _in_process
    from fraud_detection.feedback.traffic import run_traffic, world_of
    from fraud_detection.runtime.project import project_context

    with traffic_project.inside():
        assert _cli("--days", "1", "--in-process") == 0
        context = project_context(None)
        world, state = world_of(context)
        world.chunk, calls = 100, []
        send, close, _ = _in_process(context)

        def stopping(rows: list[dict]) -> list[dict]:
            if len(calls) == 2:
                raise RuntimeError("stopped")
            calls.append(rows)
            return send(rows)

        with pytest.raises(RuntimeError, match="stopped"):
            run_traffic(world, state, 1, stopping)
        close()
        world.labels.close()
        assert _cli("--days", "1", "--in-process") == 0
    return Played(traffic_project.root, [row["transaction_id"] for rows in calls[:2] for row in rows])


def _served(project: Played) -> pl.DataFrame:
    records = [r for r in read_json_lines(project.root / "data/08_serving/predictions") if r["role"] == "served"]
    return pl.DataFrame([{"transaction_id": r["transaction_id"], **r["features"]} for r in records])


def test_the_next_days_are_served_once_each_in_time_order(played: Played, transactions) -> None:
    traffic = pl.read_parquet(played.root / "data/01_raw/traffic/*/part-0.parquet")
    days = traffic["tx_datetime"].dt.date().unique().sort().to_list()
    assert [d.isoformat() for d in days] == ["2018-05-16", "2018-05-17"]
    assert traffic["transaction_id"].to_list() == list(range(transactions.height, transactions.height + len(traffic)))
    served = _served(played)["transaction_id"].to_list()
    assert set(played.sent_before_stop) < set(served)
    assert sorted(served) == traffic["transaction_id"].to_list(), "every transaction sent once, none twice"


def test_every_served_vector_equals_the_offline_features(played: Played, transactions) -> None:
    """The offline engine, given the run's label events, computes every vector the run served: the investigation
    labels counted as soon as they were known, on both paths."""
    from fraud_detection.feedback.labels import LabelFiles, events_frame

    traffic = pl.read_parquet(played.root / "data/01_raw/traffic/*/part-0.parquet").select(transactions.columns)
    everything = pl.concat([transactions, traffic])
    events = events_frame(LabelFiles(played.root / "data/08_serving/labels").events())
    offline = polars_engine.transaction_features(everything, polars_engine.state_tables(everything, 7, events))
    delayed_only = polars_engine.transaction_features(everything, polars_engine.state_tables(everything, 7))
    assert (offline["terminal_risk_7d"] != delayed_only["terminal_risk_7d"]).sum() >= 10  # day 1's investigations
    served = _served(played).sort("transaction_id")
    expected = offline.filter(pl.col("transaction_id").is_in(served["transaction_id"].implode())).sort("transaction_id")
    assert served.height > 1000
    for name in FEATURES:
        np.testing.assert_allclose(served[name].to_numpy(), expected[name].to_numpy(), rtol=1e-9, err_msg=name)


def test_labels_come_from_both_sources_once_each(played: Played, transactions) -> None:
    from fraud_detection.feedback.labels import LabelFiles, events_frame

    events = events_frame(LabelFiles(played.root / "data/08_serving/labels").events())
    sources = Counter(events["source"].to_list())
    assert sources["investigation"] > 0 and sources["delayed"] > 0
    assert events["transaction_id"].is_unique().all(), "a label is published once, when it becomes known"
    truth = pl.concat([transactions, pl.read_parquet(played.root / "data/01_raw/traffic/*/part-0.parquet")])
    joined = events.join(truth.select("transaction_id", "tx_datetime", fraud="tx_fraud"), on="transaction_id")
    assert joined.height == events.height
    assert (joined["tx_fraud"] == joined["fraud"]).all()
    delayed = joined.filter(pl.col("source") == "delayed")
    assert ((delayed["known_at"] - delayed["tx_datetime"]).dt.total_days() == 7).all()
    investigated = joined.filter(pl.col("source") == "investigation")
    assert (investigated["known_at"] > investigated["tx_datetime"]).all()
    assert ((investigated["known_at"] - investigated["tx_datetime"]).dt.total_days() < 7).all()


@pytest.fixture(scope="module")
def http_played(serving_project: ServingProject, tmp_path_factory, transactions):
    """Two days played without a stop against the service's ASGI app (what `bentoml serve` runs), through `--url`'s
    client: (the project, the run's summary)."""
    from starlette.testclient import TestClient

    from fraud_detection.cli.traffic import _over_http
    from fraud_detection.feedback.traffic import run_traffic, world_of
    from fraud_detection.runtime.project import project_context
    from fraud_detection.serving.service import FraudService

    project = _copy(serving_project, tmp_path_factory, transactions)
    patch = pytest.MonkeyPatch()
    patch.setenv("FRAUD_DETECTION_ADMIN_TOKEN", "s3cret")
    with project.inside(), TestClient(FraudService.to_asgi(is_main=True)) as client:
        world, state = world_of(project_context(None))
        send, _ = _over_http("http://testserver", client)
        summary = run_traffic(world, state, 2, send, progress=lambda line: None)
        world.labels.close()
    patch.undo()
    return project, summary


def test_over_http_the_service_answers_and_logs_every_transaction(http_played) -> None:
    project, summary = http_played
    traffic = pl.read_parquet(project.root / "data/01_raw/traffic/*/part-0.parquet")
    served = _served(Played(project.root, []))
    assert summary.sent == traffic.height == served.height > 500
    assert sorted(served["transaction_id"].to_list()) == traffic["transaction_id"].to_list()
    assert sum(summary.decisions.values()) == summary.sent
    parts = (summary.setup_seconds, summary.rollover_seconds, summary.send_seconds)
    assert all(part > 0 for part in parts) and sum(parts) < summary.seconds  # where the run's time went


def test_a_stopped_run_investigates_the_cards_an_uninterrupted_run_does(played: Played, http_played) -> None:
    """The resumed day's investigations rank the cards by all of the day's served risk, the part served before the
    stop included (read back from the prediction log): the same events as the uninterrupted run over HTTP."""
    from fraud_detection.feedback.labels import LabelFiles, events_frame

    def investigated(root: Path) -> pl.DataFrame:
        events = events_frame(LabelFiles(root / "data/08_serving/labels").events())
        return events.filter(pl.col("source") == "investigation").sort("transaction_id")

    resumed, uninterrupted = investigated(played.root), investigated(http_played[0].root)
    assert resumed.height > 0 and resumed.equals(uninterrupted)


def test_a_source_other_than_the_simulator_is_refused(traffic_project: ServingProject, capsys) -> None:
    with traffic_project.inside():
        from fraud_detection.cli import main

        text = (traffic_project.root / "params.yaml").read_text()
        try:
            (traffic_project.root / "params.yaml").write_text(text.replace("source: simulate", "source: data/mine"))
            assert main(["traffic", "run", "--days", "1", "--in-process"]) == 2
        finally:
            (traffic_project.root / "params.yaml").write_text(text)
    assert "ingest.source='data/mine'" in capsys.readouterr().err


def test_compromises_recorded_for_other_params_are_refused(traffic_project: ServingProject, capsys) -> None:
    other = compromise_schedule(dataclasses.replace(_config(traffic_project.root), n_days=DAYS - 1)).as_frame()
    with traffic_project.inside():
        from fraud_detection.cli import main

        recorded = Path(COMPROMISES).read_bytes()
        try:
            ParquetDataset(COMPROMISES).save(other)
            assert main(["traffic", "run", "--days", "1", "--in-process"]) == 2
        finally:
            Path(COMPROMISES).write_bytes(recorded)
    assert f"expected 2 a day for days 0..{DAYS - 1}" in capsys.readouterr().err
