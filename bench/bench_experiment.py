"""The experiment analysis on a synthetic 5 M-row labelled-predictions table (nothing to build first).

Builds `--rows` served rows of `--customers` customers over 28 days, each customer in variant `A` or `B` at the
design's shares (`--control-share`), its transactions carrying a customer-level fraud propensity; labels known for
the rows older than the 7-day delay and for 1 % of the newer ones; scores a little better in `B` (0.3 % of the
genuine transactions scored like frauds); decisions from the score; latency, degraded answers and the rules
fallback. Then times `analyze` (the design's shares, 200 bootstrap replicates), median over `--runs` runs after one
warm-up, against the 15 s target; beside it, the floor: the same served rows summed per variant and customer in
polars (the group-by every analysis starts from), without any statistics.
Results: reports/bench/experiment.json.

Run: uv run python -m bench.bench_experiment [--runs 3] [--rows 5000000] [--customers 500000]
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

import numpy as np
import polars as pl

from bench.timing import median_seconds, save
from fraud_detection.experiments.analysis import analyze

START = datetime(2018, 9, 1, tzinfo=UTC)
DAYS, DELAY_DAYS = 28, 7
TARGET_SECONDS = 15.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--customers", type=int, default=500_000)
    parser.add_argument("--control-share", type=float, default=0.5, help="the rest is the treatment's")
    args = parser.parse_args()
    shares = {"A": args.control_share, "B": round(1 - args.control_share, 6)}
    served = served_rows(args.rows, args.customers, shares, np.random.default_rng(0))
    seconds, times = median_seconds(lambda: analyze(served, shares, label_delay_days=DELAY_DAYS), args.runs)
    floor, _ = median_seconds(lambda: customer_sums(served), args.runs)
    result = analyze(served, shares, label_delay_days=DELAY_DAYS)
    save("experiment", {
        "rows": served.height, "customers": args.customers, "shares": shares, "bootstrap_replicates": 200,
        "analyze_seconds": round(seconds, 3), "runs_seconds": [round(t, 3) for t in times],
        "floor_group_by_seconds": round(floor, 3), "ratio_to_floor": round(seconds / floor, 2),
        "target_seconds": TARGET_SECONDS, "within_target": seconds < TARGET_SECONDS,
        "srm_p_value": result["srm"]["p_value"],
        "significant": [row["metric"] for row in result["comparisons"] if row["significant"]],
    })  # fmt: skip


def customer_sums(served: pl.DataFrame) -> pl.DataFrame:
    """The floor: each variant's customers with their transaction, fraud and amount sums."""
    return served.group_by("variant", "customer_id").agg(
        pl.len(), pl.col("tx_fraud").cast(pl.Int64).sum(), pl.col("tx_amount").sum()
    )


def served_rows(rows: int, customers: int, shares: dict[str, float], rng: np.random.Generator) -> pl.DataFrame:
    """The served rows of a synthetic A/B test, shaped as the labelled predictions."""
    variant_of = rng.choice(list(shares), size=customers, p=list(shares.values()))
    propensity = rng.beta(0.5, 60, customers)  # a customer's transactions share its fraud risk
    customer = rng.integers(0, customers, rows)
    micros = int(START.timestamp() * 1_000_000) + np.sort(rng.integers(0, DAYS * 86_400 * 1_000_000, rows))
    fraud = rng.random(rows) < propensity[customer]
    treated = variant_of[customer] != next(iter(shares))
    look_alike = rng.random(rows) < 0.003  # genuine transactions scored as frauds: the false declines
    genuine_score = np.where(look_alike, rng.beta(4, 2, rows), rng.beta(1, 20, rows))
    score = np.where(fraud, rng.beta(np.where(treated, 5.5, 5.0), 2), genuine_score)
    age_days = DAYS - (micros - micros[0]) / 86_400e6
    known = (age_days >= DELAY_DAYS) | (rng.random(rows) < 0.01)
    version = np.where(rng.random(rows) < 0.002, "rules", np.where(treated, "2", "1"))
    return pl.DataFrame({
        "transaction_id": np.arange(rows), "customer_id": customer, "tx_amount": np.round(rng.gamma(2, 30, rows), 2),
        "role": "served", "variant": variant_of[customer], "model_version": version, "fraud_probability": score,
        "latency_ms": rng.gamma(4, 0.5, rows), "degraded": rng.random(rows) < 0.001,
        "tx_fraud": pl.Series(np.where(known, fraud, 0), dtype=pl.Int8).set(pl.Series(~known), None),
    }).with_columns(
        pl.Series("tx_datetime", micros).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        pl.when(pl.col("fraud_probability") >= 0.9).then(pl.lit("decline"))
        .when(pl.col("fraud_probability") >= 0.5).then(pl.lit("review")).otherwise(pl.lit("approve")).alias("decision"),
    )  # fmt: skip


if __name__ == "__main__":
    main()
