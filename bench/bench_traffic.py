"""`fraud-detection traffic run --in-process` end to end, and the label consumer alone.

Needs `make repro` first. Each run plays `--days` days in a scratch copy of the project's serving state (the ingested
transactions, the online store, the registry: the project's own data/ is left as it is) and records the command's
own figures (`--json`: transactions sent, seconds, transactions a second). Then the label consumer: the online
updater built from the data, one day's transactions added, and `--labels` label events of them applied through the
SQLite online store (a terminal row written whenever a label changes it). Medians over `--runs` runs.
Results: reports/bench/traffic.json.

Run: uv run python -m bench.bench_traffic [--runs 3] [--days 2] [--labels 100000]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import polars as pl

from bench.timing import machine, save
from fraud_detection.features.definitions import EPOCH, MICROS_PER_DAY
from fraud_detection.features.online import updater_from_history
from fraud_detection.feedback.consumer import OutcomeApplier
from fraud_detection.feedback.labels import label_event

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("pyproject.toml", "params.yaml", ".telemetry", "conf", "data/02_intermediate/transactions",
          "data/05_feature_store", "data/mlflow", "data/04_feature")  # fmt: skip
TARGET_TX_PER_S, TARGET_LABELS_PER_S = 10_000, 50_000


def scratch_project(folder: Path) -> Path:
    for name in COPIED:
        source, target = ROOT / name, folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
    return folder


def traffic_run(days: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        project = scratch_project(Path(folder))
        command = [
            str(ROOT / ".venv/bin/fraud-detection"),
            "traffic",
            "run",
            "--days",
            str(days),
            "--in-process",
            "--json",
        ]
        started = time.perf_counter()
        out = subprocess.run(command, cwd=project, check=True, capture_output=True, text=True).stdout
        wall = time.perf_counter() - started
        summary = json.loads(out[out.index("{") :])
        return summary | {"wall_seconds": round(wall, 2)}


def consumer_rate(labels: int) -> float:
    """Label events applied a second through the SQLite online store (in a scratch copy)."""
    from fraud_detection.feature_store.dataset import FeatureStoreDataset
    from fraud_detection.feature_store.online import OnlineUpdaterSink

    with tempfile.TemporaryDirectory() as folder:
        project = scratch_project(Path(folder))
        history = pl.read_parquet(project / "data/02_intermediate/transactions/*/part-0.parquet")
        last = history["tx_datetime"].dt.epoch("us").max() // MICROS_PER_DAY
        day = last  # the data's last day, played again as if it were new
        before = history.filter(pl.col("tx_datetime").dt.epoch("us") < day * MICROS_PER_DAY)
        today = history.filter(pl.col("tx_datetime").dt.epoch("us") >= day * MICROS_PER_DAY)
        store = FeatureStoreDataset(str(project / "data/05_feature_store/registry.db"),
                                    {"type": "sqlite", "path": str(project / "data/05_feature_store/online.db")},
                                    {"type": "duckdb"}).load()  # fmt: skip
        updater, pending = updater_from_history(before, 7, day * MICROS_PER_DAY)
        applier = OutcomeApplier(updater, pending, OnlineUpdaterSink(store))
        applier.start_day(day)
        applier.add_transactions(today["transaction_id"].to_list(), today["customer_id"].to_list(),
                                 today["terminal_id"].to_list(), today["tx_datetime"].dt.epoch("us").to_list(),
                                 today["tx_amount"].to_list())  # fmt: skip
        known = EPOCH + timedelta(days=day + 1)
        rows = today.select("transaction_id", "tx_fraud").iter_rows()
        events = [label_event(t, f, known, "investigation") for t, f in rows]
        events = (events * (labels // len(events) + 1))[:labels]  # repeats count too: each is read and checked
        started = time.perf_counter()
        for start in range(0, len(events), 10_000):
            applier.apply(events[start : start + 10_000])
        return len(events) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--labels", type=int, default=100_000)
    args = parser.parse_args()
    runs = [traffic_run(args.days) for _ in range(args.runs)]
    rates = [consumer_rate(args.labels) for _ in range(args.runs)]
    figures = {
        "machine": machine(),
        "traffic_in_process": {
            "days": args.days, "runs": runs,
            "median_transactions_per_second": statistics.median(r["transactions_per_second"] for r in runs),
            "median_wall_seconds": statistics.median(r["wall_seconds"] for r in runs),
            "target_transactions_per_second": TARGET_TX_PER_S,
        },
        "label_consumer_sqlite": {
            "labels": args.labels, "events_per_second": [round(r) for r in rates],
            "median_events_per_second": round(statistics.median(rates)),
            "target_events_per_second": TARGET_LABELS_PER_S,
        },
    }  # fmt: skip
    print(json.dumps(figures, indent=2))
    print(f"wrote {save('traffic', figures)}")


if __name__ == "__main__":
    main()
