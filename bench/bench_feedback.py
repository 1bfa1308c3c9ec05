"""The feedback stage on a synthetic 1 M-record prediction log (nothing to build first).

Writes, in a temporary folder, a prediction log shaped as the service writes it (JSON lines, every field, a
feature vector of the project's features; `--transactions` transactions over 30 days, each logged twice: served, by
variant `control` or `treatment`, and by the shadow) and the label events of the traffic run (a delayed label for
every transaction older than the delay, an investigation label the day it happened for 1 % of them, 1 % of the
events delivered twice, labels of 10,000 transactions never predicted). Then times, medians over `--runs` runs:
- reading the log (`prediction_table`: polars' JSON-lines reader) and the label events (`label_events`);
- the join (`labelled_predictions`) and the summary (`feedback_summary`);
- the whole stage's work (read + join + summary), against the 10 s budget;
- for comparison, the monitor's record-by-record reader (`prediction_records`) on the first 100,000 records.
Results: reports/bench/feedback.json.

Run: uv run python -m bench.bench_feedback [--runs 5] [--transactions 500000]
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

import numpy as np
import polars as pl

from bench.timing import median_seconds, params, save
from fraud_detection.features.definitions import FEATURES
from fraud_detection.feedback.labels import LabelEventsDataset
from fraud_detection.feedback.outcomes import feedback_summary, labelled_predictions
from fraud_detection.serving.prediction_log import PredictionTableDataset, read_json_lines, records_frame

START = datetime(2018, 9, 1, tzinfo=UTC)
DAYS, CUSTOMERS, TERMINALS, FRAUD_RATE = 30, 5_000, 10_000, 0.008
ISO = "%Y-%m-%dT%H:%M:%S%.6f+00:00"
BUDGET_SECONDS = 10.0
BASELINE_RECORDS = 100_000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--transactions", type=int, default=500_000, help="each logged twice (served + shadow)")
    args = parser.parse_args()
    settings = params()
    top_k, delay = settings.evaluate.top_k, settings.features.label_delay_days
    with tempfile.TemporaryDirectory(prefix="bench-feedback-") as folder:
        root = Path(folder)
        served = _transactions(args.transactions, np.random.default_rng(0))
        records = _write_log(root / "predictions", served)
        events = _write_labels(root / "labels", served, delay, np.random.default_rng(1))
        figures = {"records": records, "label_events": events, "log_mb": round(_size(root / "predictions") / 1e6)}
        figures |= _stage(root, top_k, args.runs)
        figures["prediction_records_100k_seconds (the monitor's reader)"] = _baseline(root / "predictions")
    save("feedback", figures)


def _transactions(n: int, rng: np.random.Generator) -> pl.DataFrame:
    micros = int(START.timestamp() * 1_000_000) + np.sort(rng.integers(0, DAYS * 86_400 * 1_000_000, n))
    customers = rng.integers(0, CUSTOMERS, n)
    fraud = rng.random(n) < FRAUD_RATE
    score = np.clip(np.where(fraud, rng.beta(5, 2, n), rng.beta(1, 20, n)), 0, 1)
    return pl.DataFrame({
        "transaction_id": np.arange(n, dtype=np.int64),
        "tx_datetime": pl.Series(micros).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        "customer_id": customers, "terminal_id": rng.integers(0, TERMINALS, n),
        "tx_amount": np.round(rng.gamma(2, 30, n), 2), "tx_fraud": fraud.astype(np.int8), "score": score,
        "shadow_score": np.clip(score + rng.normal(0, 0.05, n), 0, 1),
    })  # fmt: skip


def _decision(score: pl.Expr) -> pl.Expr:
    return pl.when(score >= 0.9).then(pl.lit("decline")).when(score >= 0.5).then(pl.lit("review")).otherwise(
        pl.lit("approve"))  # fmt: skip


def _write_log(folder: Path, transactions: pl.DataFrame) -> int:
    """Served and shadow records, every field the service logs, written as JSON lines (one file per day)."""
    folder.mkdir(parents=True)
    iso = pl.col("tx_datetime").dt.strftime(ISO)
    features = pl.struct([pl.col("tx_amount").alias(name) if name == "tx_amount" else (pl.col("score") * 3).alias(
        name) for name in FEATURES]).alias("features")  # fmt: skip
    common = [pl.format("req-{}", "transaction_id").alias("request_id"), iso.alias("time"), "transaction_id",
              iso.alias("tx_datetime"), "customer_id", "terminal_id", "tx_amount", features]  # fmt: skip
    variant = pl.when(pl.col("customer_id") % 2 == 0).then(pl.lit("control")).otherwise(pl.lit("treatment"))
    served = transactions.select(*common, pl.lit("served").alias("role"), pl.col("score").alias("fraud_probability"),
                                 _decision(pl.col("score")).alias("decision"),
                                 pl.when(variant == "control").then(pl.lit("1")).otherwise(pl.lit("2")).alias(
                                     "model_version"), variant.alias("variant"))  # fmt: skip
    shadow = transactions.select(*common, pl.lit("shadow").alias("role"),
                                 pl.col("shadow_score").alias("fraud_probability"),
                                 _decision(pl.col("shadow_score")).alias("decision"),
                                 pl.lit("3").alias("model_version"), pl.lit("shadow").alias("variant"))  # fmt: skip
    tail = [pl.lit(False).alias("degraded"), pl.lit([], dtype=pl.List(pl.String)).alias("reasons"),
            pl.lit(1.7).alias("latency_ms")]  # fmt: skip
    log = pl.concat([served, shadow]).with_columns(tail).sort("tx_datetime", maintain_order=True)
    day = pl.col("tx_datetime").str.slice(0, 10)
    for (name,), part in log.with_columns(day.alias("day")).group_by("day", maintain_order=True):
        part.drop("day").write_ndjson(folder / f"predictions-{name}-000000000000-1.jsonl")
    return log.height


def _write_labels(folder: Path, transactions: pl.DataFrame, delay: int, rng: np.random.Generator) -> int:
    """Delayed labels of the transactions older than the delay, investigations of 1 % the day they happened, 1 %
    re-delivered, and labels of transactions never predicted."""
    folder.mkdir(parents=True)
    now = transactions["tx_datetime"].max()
    delayed = transactions.filter(pl.col("tx_datetime") + pl.duration(days=delay) <= now).select(
        "transaction_id", "tx_fraud", (pl.col("tx_datetime") + pl.duration(days=delay)).alias("known_at"),
        pl.lit("delayed").alias("source"))  # fmt: skip
    investigated = transactions.filter(pl.Series(rng.random(len(transactions)) < 0.01)).select(
        "transaction_id", "tx_fraud", (pl.col("tx_datetime").dt.truncate("1d") + pl.duration(hours=23)).alias(
            "known_at"), pl.lit("investigation").alias("source"))  # fmt: skip
    strangers = pl.DataFrame({"transaction_id": np.arange(10_000) + len(transactions) * 10,
                              "tx_fraud": np.zeros(10_000, dtype=np.int8), "known_at": [START] * 10_000,
                              "source": ["delayed"] * 10_000})  # fmt: skip
    duplicates = delayed.sample(fraction=0.01, seed=2)
    events = pl.concat([delayed, investigated, duplicates, strangers], how="vertical_relaxed")
    events = events.sort("known_at").with_columns(pl.col("known_at").dt.strftime(ISO))
    events.write_ndjson(folder / "labels-20180901T000000000000-1.jsonl")
    return events.height


def _stage(root: Path, top_k: int, runs: int) -> dict:
    table, labels = PredictionTableDataset(folder=str(root / "predictions")), LabelEventsDataset(str(root / "labels"))
    predictions, events = table.load(), labels.load()
    labelled = labelled_predictions(predictions, events)

    def whole() -> dict:
        events = labels.load()
        return feedback_summary(labelled_predictions(table.load(), events), events, top_k)

    steps = {
        "read_prediction_log": table.load,
        "read_label_events": labels.load,
        "join (labelled_predictions)": lambda: labelled_predictions(predictions, events),
        "summary (feedback_summary)": lambda: feedback_summary(labelled, events, top_k),
        "stage (read + join + summary)": whole,
    }
    figures = {"labelled": int(labelled["tx_fraud"].is_not_null().sum())}
    for name, work in steps.items():
        median, times = median_seconds(work, runs)
        figures[f"{name}_seconds"] = round(median, 3)
    figures["stage_runs_seconds"] = [round(t, 3) for t in times]
    figures["within_budget"] = figures["stage (read + join + summary)_seconds"] < BUDGET_SECONDS
    return figures


def _baseline(folder: Path) -> float:
    median, _ = median_seconds(lambda: records_frame(islice(read_json_lines(folder), BASELINE_RECORDS)), 1)
    return round(median, 3)


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir())


if __name__ == "__main__":
    main()
