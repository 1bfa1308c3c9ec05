"""The batch_predict stage's nodes on a real serving project (registry with a champion, BentoML's store) and the
small simulated set's features: the last day published with its queue and risk table, a re-run is a no-op, a
backfill publishes day by day, a rejected batch fails the stage and leaves the previous one published, a new
champion re-scores."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from fraud_detection.batch.risk_store import SqliteRiskStore
from fraud_detection.pipelines.batch_predict.nodes import (
    BatchRejected,
    fail_on_rejections,
    plan_days,
    publish_batches,
    score_days,
)
from fraud_detection.registry.promotion import force_promote
from fraud_detection.registry.registry import RegistryAddress
from tests.conftest import SPARK_TEST_PARAMS, changed, params_problem
from tests.feature_store.conftest import label_events, offline_features, transactions
from tests.serving.conftest import MODEL, serving_project

__all__ = ["label_events", "offline_features", "serving_project", "transactions"]


@pytest.fixture
def stage(serving_project, offline_features, params, tmp_path):
    store = SqliteRiskStore(tmp_path / "risk.db")
    address = RegistryAddress(f"sqlite:///{serving_project.root / 'data/mlflow/mlflow.db'}",
                              str(serving_project.root / "data/mlflow/registry.lock"))  # fmt: skip
    features = offline_features.lazy()

    def run(**changes) -> dict:
        settings = changed(params.batch_predict, **changes)
        with serving_project.inside():
            days = plan_days(features, {"aliases": {}}, settings)
            predictions, queues, rejected, passed, report = score_days(
                features, days, address, store, settings, MODEL, SPARK_TEST_PARAMS
            )
            final = publish_batches(passed, store, report)
        return {"days": days, "predictions": predictions, "queues": queues, "rejected": rejected, "report": final}

    return run, store


def test_the_last_day_is_published_with_its_queue_and_a_rerun_is_a_no_op(stage, offline_features, serving_project):
    run, store = stage
    first = run()
    last = offline_features["tx_datetime"].max().date().isoformat()
    assert first["days"] == [last] and first["report"]["published"] == [last]
    day_rows = offline_features.filter(pl.col("tx_datetime").dt.date() == date.fromisoformat(last))
    predictions = first["predictions"][last]
    assert len(predictions) == len(day_rows) and predictions["model_version"].unique().to_list() == ["1"]
    assert predictions["fraud_probability"].is_between(0, 1).all()
    queue = first["queues"][last]
    assert len(queue) == min(100, day_rows["customer_id"].n_unique()) and queue["risk"].is_sorted(descending=True)
    card = store.lookup(int(queue["customer_id"][0]))
    assert card["batch_date"] == last and card["model_version"] == "1" and card["risk"] == queue["risk"][0]
    fail_on_rejections(first["report"])
    again = run()
    assert again["report"]["skipped"] == [last] and again["predictions"] == {}, "same day, same model: nothing to do"


def test_a_backfill_publishes_day_by_day_and_compares_each_with_the_day_before(stage, offline_features) -> None:
    run, store = stage
    last = offline_features["tx_datetime"].max().date()
    start = last - timedelta(days=3)
    result = run(start_date=start.isoformat(), end_date=(last - timedelta(days=1)).isoformat())
    days = [(start + timedelta(days=i)).isoformat() for i in range(3)]
    assert result["report"]["published"] == days == sorted(store.published())
    psis = [result["report"]["days"][d]["psi"] for d in days]
    assert psis[0] is None and all(0 <= p < 0.25 for p in psis[1:]), psis
    with pytest.raises(ValueError, match=r"expected days of the data"):
        run(date="2031-01-01")
    with pytest.raises(ValueError, match=r"expected days of the data"):
        run(start_date=(start - timedelta(days=365)).isoformat(), end_date=start.isoformat())


def test_bad_days_and_engines_are_named(config_loader) -> None:
    raw = config_loader["parameters"]
    assert params_problem(raw, "batch_predict", start_date="2018-05-01") == (
        "params.yaml batch_predict: expected start_date and end_date both set (a backfill) or both null"
    )
    assert params_problem(
        config_loader["parameters"], "batch_predict", start_date="2018-05-03", end_date="2018-05-01"
    ) == ("params.yaml batch_predict: expected start_date <= end_date (2018-05-03 .. 2018-05-01)")
    assert params_problem(raw, "batch_predict", date="yesterday") == (
        "params.yaml batch_predict.date='yesterday': expected 'latest' or a date (YYYY-MM-DD)"
    )
    assert params_problem(raw, "batch_predict", engine="pandas") == (
        "params.yaml batch_predict.engine='pandas': expected 'polars' or 'spark'"
    )
    assert params_problem(raw, "batch_predict", gate={"max_psi": 0.0, "psi_bins": 10}) == (
        "params.yaml batch_predict.gate.max_psi=0.0: expected a number > 0"
    )


def test_a_rejected_batch_fails_the_stage_and_the_previous_one_stays_published(stage, offline_features) -> None:
    run, store = stage
    last = offline_features["tx_datetime"].max().date()
    run(date=(last - timedelta(days=1)).isoformat())
    before = {c: store.lookup(c) for c in range(300)}
    result = run(gate={"max_psi": 1e-9, "psi_bins": 10})  # any shift at all is too much
    day = last.isoformat()
    assert result["report"]["rejected"] == [day] and day not in store.published()
    assert result["rejected"][day]["rejected_because"][0].startswith("score PSI")
    assert {c: store.lookup(c) for c in range(300)} == before, "nothing of the rejected batch is visible"
    with pytest.raises(BatchRejected, match=rf"{day}: score PSI .* expected at most 1e-09"):
        fail_on_rejections(result["report"])


def test_a_new_champion_re_scores_a_published_day(stage, serving_project) -> None:
    run, store = stage
    first = run()
    [day] = first["days"]
    registry = serving_project.registry()
    force_promote(registry, serving_project.challenger, "tests", "new champion")
    try:
        again = run()
        assert again["report"]["published"] == [day] and store.published()[day].model_version == "2"
    finally:
        force_promote(registry, serving_project.champion, "tests", "restore")
        registry.move("challenger", serving_project.challenger, "promote", "tests", "restore")


@pytest.mark.spark
def test_spark_scores_the_day_exactly_as_polars(stage, offline_features, serving_project, spark) -> None:
    from fraud_detection.batch.scoring import day_rows, score_polars, score_spark
    from fraud_detection.registry.loading import load_model

    with serving_project.inside():
        scorer = load_model(serving_project.registry(), "champion").scorer
    rows = day_rows(offline_features.lazy(), offline_features["tx_datetime"].max().date())
    with_polars = score_polars(rows, scorer.predict_proba)
    with_spark = score_spark(spark, rows, scorer.predict_proba)
    assert with_spark.equals(with_polars), "identical scores, bit for bit"
