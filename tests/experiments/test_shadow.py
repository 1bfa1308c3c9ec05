"""The shadow report on simulated logs: a shadow identical to the served model differs in nothing; a shadow that
declines more frauds is found better, its flips carrying the fraud amount; missing shadow answers are counted; the
paired delta method agrees with a large paired customer bootstrap; no shadow row gives no report; bad input fails
naming what is wrong."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from fraud_detection.experiments.shadow import METRICS, shadow_report
from fraud_detection.experiments.statistics import paired_ratio_difference, poisson_weights, ratio

START = datetime(2024, 3, 1, tzinfo=UTC)
DAYS = 21


def served_log(customers: int, seed: int) -> pl.DataFrame:
    """The served rows of `customers` over `DAYS` days: Poisson transactions per customer, a customer-level fraud
    risk, labels known up to 7 days before the end; approve below 0.5, review below 0.8, decline from 0.8."""
    rng = np.random.default_rng(seed)
    counts = rng.poisson(rng.gamma(2.0, 5.0, customers))
    customer = np.repeat(np.arange(customers), counts)
    rows = len(customer)
    fraud = rng.random(rows) < rng.beta(0.5, 20.0, customers)[customer]
    score = np.where(fraud, rng.beta(4, 2, rows), rng.beta(1, 8, rows))
    seconds = np.sort(rng.integers(0, DAYS * 86_400, rows))
    known = seconds < (DAYS - 7) * 86_400
    return pl.DataFrame({
        "transaction_id": np.arange(rows), "tx_datetime": [START + timedelta(seconds=int(s)) for s in seconds],
        "customer_id": customer, "tx_amount": np.round(rng.gamma(2, 30, rows), 2), "role": "served", "variant": "A",
        "model_version": "1", "fraud_probability": score, "decision": _decisions(score),
        "latency_ms": rng.gamma(4, 0.5, rows), "degraded": False,
        "tx_fraud": pl.Series(fraud.astype(np.int8)).set(pl.Series(~known), None),
    }).with_columns(pl.col("tx_datetime").dt.cast_time_unit("us"))  # fmt: skip


def _decisions(score: np.ndarray) -> np.ndarray:
    return np.where(score >= 0.8, "decline", np.where(score >= 0.5, "review", "approve"))


def with_shadow(served: pl.DataFrame, score: np.ndarray, latency_ms: float = 3.0) -> pl.DataFrame:
    """The served rows and, for each, the shadow's row (version "2") scoring `score`."""
    shadow = served.with_columns(
        role=pl.lit("shadow"), variant=pl.lit("shadow"), model_version=pl.lit("2"), fraud_probability=score,
        decision=_decisions(score), latency_ms=pl.lit(latency_ms),
    )  # fmt: skip
    return pl.concat([served, shadow]).sort("tx_datetime", "transaction_id", "role")


def better_shadow(served: pl.DataFrame, seed: int, share: float = 0.3) -> np.ndarray:
    """A shadow's scores: the served ones, but a `share` of the known frauds declined (0.95)."""
    rng = np.random.default_rng(seed)
    fraud = (served["tx_fraud"] == 1).fill_null(False).to_numpy()
    caught = fraud & (rng.random(served.height) < share)
    return np.where(caught, 0.95, served["fraud_probability"].to_numpy())


def _metric(report: dict, name: str) -> dict:
    [row] = [row for row in report["metrics"] if row["metric"] == name]
    return row


def test_a_shadow_identical_to_the_served_model_differs_in_nothing() -> None:
    served = served_log(500, seed=1)
    report = shadow_report(with_shadow(served, served["fraud_probability"].to_numpy()), bootstrap_replicates=50)
    assert set(report) == {
        "served_versions", "shadow_versions", "paired", "labelled", "served_without_shadow", "decision_agreement",
        "score_correlation", "flips", "metrics", "latency",
    }  # fmt: skip
    assert report["served_versions"] == ["1"] and report["shadow_versions"] == ["2"]
    assert report["paired"] == served.height and report["served_without_shadow"] == 0
    assert report["decision_agreement"] == 1.0
    assert report["score_correlation"] == pytest.approx({"pearson": 1.0, "spearman": 1.0})
    assert report["flips"] == []
    assert [row["metric"] for row in report["metrics"]] == list(METRICS)
    for row in report["metrics"]:
        assert set(row) == {"metric", "served_value", "shadow_value", "difference", "ci_low", "ci_high", "p_value",
                            "sequential_ci_low", "sequential_ci_high", "customers"}  # fmt: skip
        assert row["served_value"] == pytest.approx(row["shadow_value"])
        assert row["difference"] == row["ci_low"] == row["ci_high"] == 0.0
        assert row["sequential_ci_low"] == row["sequential_ci_high"] == 0.0
        assert row["p_value"] is None  # no variance, no difference: undefined
    assert report["latency"]["shadow_p50_ms"] == report["latency"]["shadow_p99_ms"] == 3.0
    latency = served["latency_ms"].to_numpy()
    assert report["latency"]["served_p99_ms"] == np.quantile(latency, 0.99, method="inverted_cdf")
    json.dumps(report, allow_nan=False)


def test_a_shadow_that_declines_more_frauds_is_better_and_its_flips_carry_the_fraud_amount() -> None:
    served = served_log(3000, seed=2)
    report = shadow_report(with_shadow(served, better_shadow(served, seed=3)))
    recall = _metric(report, "fraud_amount_recall")
    assert recall["difference"] > 0 and recall["ci_low"] > 0 and recall["p_value"] < 0.05
    assert _metric(report, "false_decline_rate")["difference"] == 0.0  # no genuine transaction changed
    assert _metric(report, "average_precision")["ci_low"] > 0
    flips = {(row["from"], row["to"]): row for row in report["flips"]}
    assert set(flips) <= {("approve", "decline"), ("review", "decline")}
    approved = flips["approve", "decline"]
    matured = served.filter(pl.col("tx_datetime") <= served["tx_datetime"].max() - timedelta(days=7))
    flipped = matured.join(
        pl.DataFrame({"transaction_id": served["transaction_id"], "shadow": better_shadow(served, seed=3)}),
        on="transaction_id",
    ).filter((pl.col("decision") == "approve") & (pl.col("shadow") == 0.95) & (pl.col("tx_fraud") == 1))
    assert approved["frauds"] == flipped.height and approved["genuine"] == 0
    assert approved["fraud_amount"] == pytest.approx(flipped["tx_amount"].sum())
    fraud_amount = matured.filter(pl.col("tx_fraud") == 1)["tx_amount"].sum()
    assert recall["difference"] == pytest.approx(approved["fraud_amount"] / fraud_amount)  # reviews were flagged
    assert report["decision_agreement"] == pytest.approx(1 - sum(row["transactions"] for row in flips.values())
                                                         / served.height)  # fmt: skip
    json.dumps(report, allow_nan=False)


def test_missing_shadow_answers_are_counted() -> None:
    served = served_log(300, seed=4)
    log = with_shadow(served, served["fraud_probability"].to_numpy())
    first = served.sort("tx_datetime")["transaction_id"][0]  # the shadow's first answer: it was on from there
    candidates = [i for i in served["transaction_id"].to_list() if i != first]
    dropped = set(np.random.default_rng(5).choice(candidates, 40, replace=False).tolist())
    failed = [i for i in range(served.height) if i not in dropped][:3]  # a shadow row without a score
    log = log.filter(~((pl.col("role") == "shadow") & pl.col("transaction_id").is_in(list(dropped))))
    log = log.with_columns(
        fraud_probability=pl.when((pl.col("role") == "shadow") & pl.col("transaction_id").is_in(failed))
        .then(None)
        .otherwise(pl.col("fraud_probability"))
    )
    report = shadow_report(log, bootstrap_replicates=20)
    assert report["served_without_shadow"] == 43
    assert report["paired"] == served.height - 43


def test_served_rows_before_the_shadow_started_are_no_failures() -> None:
    served = served_log(300, seed=4).sort("tx_datetime")
    later = served.slice(100)  # the shadow was configured from the 101st transaction on
    log = pl.concat([served.slice(0, 100), with_shadow(later, later["fraud_probability"].to_numpy())])
    report = shadow_report(log, bootstrap_replicates=20)
    assert (report["paired"], report["served_without_shadow"]) == (later.height, 0)


def test_as_of_leaves_later_rows_out() -> None:
    served = served_log(300, seed=6)
    as_of = START + timedelta(days=10)
    log = with_shadow(served, served["fraud_probability"].to_numpy())
    report = shadow_report(log, as_of=as_of.replace(tzinfo=None), bootstrap_replicates=20)  # a naive as_of is UTC
    assert report["paired"] == served.filter(pl.col("tx_datetime") <= as_of).height


def test_the_paired_delta_method_matches_a_large_paired_customer_bootstrap() -> None:
    served = served_log(4000, seed=7)
    shadow_score = better_shadow(served, seed=8, share=0.2)
    report = shadow_report(with_shadow(served, shadow_score), bootstrap_replicates=20)
    recall = _metric(report, "fraud_amount_recall")
    se = (recall["ci_high"] - recall["ci_low"]) / (2 * stats.norm.ppf(0.975))
    # the per-customer sums (every customer, those without a matured fraud too), worked out here
    matured_until = served["tx_datetime"].max() - timedelta(days=7)
    fraud = (pl.col("tx_datetime") <= matured_until) & (pl.col("tx_fraud") == 1)
    customers = (
        served.with_columns(shadow_decision=_decisions(shadow_score))
        .group_by("customer_id")
        .agg(
            x=pl.col("tx_amount").filter(fraud).sum(),
            served=pl.col("tx_amount").filter(fraud & (pl.col("decision") != "approve")).sum(),
            shadow=pl.col("tx_amount").filter(fraud & (pl.col("shadow_decision") != "approve")).sum(),
        )
    )
    x, y_served, y_shadow = (customers[name].to_numpy() for name in ("x", "served", "shadow"))
    rng = np.random.default_rng(9)
    weights = np.stack([poisson_weights(len(x), rng) for _ in range(4000)]).astype(float)
    total = weights @ x
    replicates = (weights @ y_shadow) / total - (weights @ y_served) / total
    assert se == pytest.approx(replicates.std(ddof=1), rel=0.1)
    assert se**2 == pytest.approx(paired_ratio_difference(y_shadow, y_served, x).variance)
    unpaired = ratio(y_shadow, x).variance + ratio(y_served, x).variance
    assert se**2 < unpaired / 2  # pairing removes the two models' common noise


def test_the_paired_variance_without_a_control_is_the_ratios() -> None:
    rng = np.random.default_rng(10)
    x = rng.poisson(5.0, 200).astype(float)
    y = rng.binomial(x.astype(int), 0.3).astype(float)
    difference = paired_ratio_difference(y, np.zeros_like(y), x)
    assert difference.value == pytest.approx(ratio(y, x).value)
    assert difference.variance == pytest.approx(ratio(y, x).variance)
    assert np.isnan(paired_ratio_difference([1.0], [0.0], [2.0]).variance)


def test_a_table_without_shadow_rows_gives_none() -> None:
    assert shadow_report(served_log(50, seed=11)) is None


def test_undefined_figures_are_none() -> None:
    served = served_log(100, seed=12).with_columns(tx_fraud=pl.lit(0, dtype=pl.Int8))
    report = shadow_report(with_shadow(served, served["fraud_probability"].to_numpy()), bootstrap_replicates=20)
    recall, precision = _metric(report, "fraud_amount_recall"), _metric(report, "average_precision")
    assert recall["served_value"] is recall["difference"] is recall["ci_low"] is None
    assert precision["served_value"] is precision["shadow_value"] is None
    json.dumps(report, allow_nan=False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda log: log.drop("transaction_id"), "lack the columns ['transaction_id']"),
        (lambda log: log.drop("model_version", "latency_ms"), "lack the columns ['model_version', 'latency_ms']"),
        (lambda log: log.with_columns(pl.col("tx_datetime").cast(pl.String)), "tx_datetime is of type String"),
    ],
)
def test_bad_input_fails_naming_what_is_wrong(change, message: str) -> None:
    served = served_log(30, seed=13)
    with pytest.raises(ValueError, match=re.escape(message)):
        shadow_report(change(with_shadow(served, served["fraud_probability"].to_numpy())))
