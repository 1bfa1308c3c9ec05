"""The A/B analysis on simulated served logs: an A/A test is quiet, a planted effect is found, an assignment bug is
a sample ratio mismatch; the figures of a hand-built log worked out by hand; only matured, labelled rows feed the
outcome metrics; the output is JSON-safe; bad input fails naming what is wrong."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from sklearn.metrics import average_precision_score

from fraud_detection.experiments.analysis import METRICS, analyze

START = datetime(2024, 3, 1, tzinfo=UTC)
DAYS = 21
HALF = {"A": 0.5, "B": 0.5}


def served_log(customers: dict[str, int], seed: int, review_from: dict[str, float] | None = None) -> pl.DataFrame:
    """A served log of `customers` per variant over `DAYS` days: Poisson transactions per customer, a customer-level
    fraud risk, labels known up to 7 days before the end; a variant reviews from its `review_from` score (0.5)."""
    rng = np.random.default_rng(seed)
    variant_of = np.repeat(list(customers), list(customers.values()))
    counts = rng.poisson(rng.gamma(2.0, 5.0, len(variant_of)))
    customer = np.repeat(np.arange(len(variant_of)), counts)
    rows = len(customer)
    fraud = rng.random(rows) < rng.beta(0.5, 20.0, len(variant_of))[customer]
    score = np.where(fraud, rng.beta(4, 2, rows), rng.beta(1, 8, rows))
    review = np.array([(review_from or {}).get(v, 0.5) for v in variant_of])[customer]
    seconds = rng.integers(0, DAYS * 86_400, rows)
    known = seconds < (DAYS - 7) * 86_400
    return pl.DataFrame({
        "transaction_id": np.arange(rows), "tx_datetime": [START + timedelta(seconds=int(s)) for s in seconds],
        "customer_id": customer, "tx_amount": np.round(rng.gamma(2, 30, rows), 2), "role": "served",
        "variant": variant_of[customer], "model_version": np.where(rng.random(rows) < 0.01, "rules", "1"),
        "fraud_probability": score,
        "decision": np.where(score >= 0.8, "decline", np.where(score >= review, "review", "approve")),
        "latency_ms": rng.gamma(4, 0.5, rows), "degraded": rng.random(rows) < 0.01,
        "tx_fraud": pl.Series(fraud.astype(np.int8)).set(pl.Series(~known), None),
    }).with_columns(pl.col("tx_datetime").dt.cast_time_unit("us"))  # fmt: skip


def _row(result: dict, metric: str, treatment: str = "B") -> dict:
    [row] = [r for r in result["comparisons"] if r["metric"] == metric and r["treatment"] == treatment]
    return row


def test_an_aa_test_is_quiet_and_its_output_is_the_contract() -> None:
    result = analyze(served_log({"A": 2000, "B": 2000}, seed=1), HALF)
    assert result["srm"]["mismatch"] is False
    assert not [row["metric"] for row in result["comparisons"] if row["significant"]]
    assert [row["metric"] for row in result["comparisons"]] == list(METRICS)
    assert set(result) == {"as_of", "control", "alpha", "variants", "srm", "comparisons", "power"}
    assert set(result["comparisons"][0]) == {
        "metric", "kind", "better", "control", "treatment", "control_value", "treatment_value", "difference",
        "ci_low", "ci_high", "p_value", "sequential_p_value", "sequential_ci_low", "sequential_ci_high",
        "p_value_holm", "significant", "control_customers", "treatment_customers",
    }  # fmt: skip
    assert set(result["power"]["B"]["review_rate"]) == {"mde", "target_effect", "customers_needed_per_arm"}
    json.dumps(result, allow_nan=False)


def test_a_planted_effect_is_detected() -> None:
    result = analyze(served_log({"A": 2000, "B": 2000}, seed=2, review_from={"B": 0.35}), HALF)
    review = _row(result, "review_rate")
    assert review["significant"] is True
    assert review["difference"] > 0 and review["sequential_ci_low"] > 0
    assert review["sequential_p_value"] <= review["p_value_holm"] < 0.05
    assert not _row(result, "degraded_rate")["significant"]


def test_an_assignment_bug_is_a_sample_ratio_mismatch() -> None:
    result = analyze(served_log({"A": 2200, "B": 1800}, seed=3), HALF)
    assert result["srm"]["mismatch"] is True
    assert result["variants"]["A"]["customers"] > result["variants"]["B"]["customers"]


def test_every_treatment_is_compared_with_the_control() -> None:
    result = analyze(served_log({"A": 500, "B": 500, "C": 500}, seed=4), {"A": 0.4, "B": 0.3, "C": 0.3})
    assert result["control"] == "A"
    assert {(row["control"], row["treatment"]) for row in result["comparisons"]} == {("A", "B"), ("A", "C")}
    assert set(result["power"]) == {"B", "C"}


def _hand_built() -> pl.DataFrame:
    """Two customers per variant; the last day's rows are not matured; one matured row has no label yet."""
    day = [START + timedelta(days=d) for d in (0, 0, 1, 2, 9)]
    rows = [  # customer, variant, day, amount, score, decision, fraud, latency, degraded, model_version
        (1, "A", 0, 100.0, 0.9, "decline", 1, 10.0, False, "1"),
        (1, "A", 1, 50.0, 0.2, "approve", 1, 20.0, False, "1"),
        (1, "A", 2, 30.0, 0.6, "review", 0, 30.0, True, "rules"),
        (2, "A", 3, 20.0, 0.7, "decline", 0, 40.0, False, "1"),
        (2, "A", 2, 10.0, 0.1, "approve", None, 50.0, False, "1"),  # matured, no label yet
        (2, "A", 4, 99.0, 0.95, "decline", 1, 60.0, False, "1"),  # not matured
        (3, "B", 0, 80.0, 0.8, "review", 1, 5.0, False, "2"),
        (4, "B", 1, 40.0, 0.3, "approve", 0, 6.0, False, "2"),
    ]
    return pl.DataFrame(
        [{"customer_id": c, "variant": v, "tx_datetime": day[d], "tx_amount": a, "role": "served",
          "fraud_probability": s, "decision": dec, "tx_fraud": f, "latency_ms": lat, "degraded": deg,
          "model_version": mv} for c, v, d, a, s, dec, f, lat, deg, mv in rows],
        schema_overrides={"tx_fraud": pl.Int8, "tx_datetime": pl.Datetime("us", "UTC")},
    )  # fmt: skip


def test_the_figures_of_a_hand_built_log() -> None:
    result = analyze(_hand_built(), HALF, bootstrap_replicates=20)
    assert result["as_of"] == (START + timedelta(days=9)).isoformat()
    assert result["variants"]["A"] == {"customers": 2, "transactions": 6, "labelled": 4, "matured_unlabelled": 1}
    control = {row["metric"]: row["control_value"] for row in result["comparisons"]}
    assert control["fraud_amount_recall"] == pytest.approx(100 / 150)  # the matured frauds: 100 declined, 50 not
    assert control["false_decline_rate"] == pytest.approx(1 / 2)  # matured genuine: 30 reviewed, 20 declined
    assert control["review_rate"] == pytest.approx(1 / 6)
    assert control["degraded_rate"] == control["fallback_rate"] == pytest.approx(1 / 6)
    assert control["latency_p99_ms"] == 60.0
    assert control["average_precision"] == pytest.approx(average_precision_score([1, 1, 0, 0], [0.9, 0.2, 0.6, 0.7]))
    # the customers each estimate rests on: for the recall and AP those with a matured fraud (customer 2's is not)
    resting = {row["metric"]: (row["control_customers"], row["treatment_customers"]) for row in result["comparisons"]}
    assert resting == {"fraud_amount_recall": (1, 1), "false_decline_rate": (2, 1), "review_rate": (2, 2),
                       "average_precision": (1, 1), "latency_p99_ms": (2, 2), "degraded_rate": (2, 2),
                       "fallback_rate": (2, 2)}  # fmt: skip


def test_as_of_leaves_later_rows_out() -> None:
    result = analyze(_hand_built(), HALF, as_of=datetime(2024, 3, 3, 12), label_delay_days=1)
    assert result["variants"]["A"] == {"customers": 2, "transactions": 5, "labelled": 3, "matured_unlabelled": 1}


def test_undefined_figures_are_none_and_shadow_rows_do_not_count() -> None:
    log = _hand_built().with_columns(pl.lit(0, dtype=pl.Int8).alias("tx_fraud"))
    shadow = log.with_columns(pl.lit("shadow").alias("role"), pl.lit("shadow").alias("variant"))
    result = analyze(pl.concat([log, shadow]), HALF, bootstrap_replicates=20)
    recall = _row(result, "fraud_amount_recall")
    assert recall["control_value"] is recall["p_value"] is recall["p_value_holm"] is None
    assert recall["significant"] is False
    json.dumps(result, allow_nan=False)


def test_without_model_versions_the_fallback_rate_is_zero() -> None:
    result = analyze(_hand_built().drop("model_version"), HALF, bootstrap_replicates=20)
    fallback = _row(result, "fallback_rate")
    assert fallback["control_value"] == fallback["treatment_value"] == 0.0


@pytest.mark.parametrize(
    ("change", "shares", "message"),
    [
        (lambda log: log.drop("latency_ms"), HALF, "lack the columns ['latency_ms']"),
        (None, {"A": 0.5, "B": 0.4}, "sum to 0.9; expected 1"),
        (None, {"A": 1.2, "B": -0.2}, "shares['A'] is 1.2; expected a share in (0, 1]"),
        (None, {"A": 1.0}, "name 1 variant(s); expected the control first and at least one treatment"),
        (lambda log: log.with_columns(pl.lit("C").alias("variant")), HALF, "variant(s) {'C': 8}"),
        (lambda log: log.filter(pl.col("variant") == "B"), HALF, "the control variant 'A'"),
    ],
)
def test_bad_input_fails_naming_what_is_wrong(change, shares: dict[str, float], message: str) -> None:
    log = _hand_built()
    with pytest.raises(ValueError, match=re.escape(message)):
        analyze(change(log) if change else log, shares)
