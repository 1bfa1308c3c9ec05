"""`fraud-detection traffic run` end to end, in process and over HTTP, and the label consumer alone.

Needs `make repro` first. Each run plays `--days` days in a scratch copy of the project's serving state (the ingested
transactions, the online store, the registry: the project's own data/ is left as it is) and records the command's
own figures (`--json`: transactions sent, seconds, transactions a second, of which setup and waiting for answers).
Over HTTP, each run on a fresh scratch copy: `bentoml serve` of it, driven by `traffic run --url`, then the same
service's plain `/predict_batch` throughput side by side: the data's last day re-dated after the played days, in
requests of the command's chunk size, one request at a time (as the command sends) and four at a time. Then the
label consumer: the online updater built from the data and its last days, then the delayed labels that become known
on the last day (a day's worth) applied through the SQLite online store, each fraud rewriting its terminal's row.
Medians over `--runs`.
Results: reports/bench/traffic.json.

Run: uv run python -m bench.bench_traffic [--runs 3] [--days 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import orjson
import polars as pl

from bench.timing import machine, save
from fraud_detection.features.definitions import MICROS_PER_DAY
from fraud_detection.features.online import updater_from_history
from fraud_detection.feedback.consumer import OutcomeApplier
from fraud_detection.feedback.labels import label_event

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("pyproject.toml", "params.yaml", ".telemetry", "conf", "data/01_raw/simulated_compromises.parquet",
          "data/02_intermediate/transactions",
          "data/05_feature_store", "data/mlflow", "data/04_feature")  # fmt: skip
TARGET_TX_PER_S, TARGET_LABELS_PER_S = 10_000, 50_000
DELAY = 7  # params.yaml features.label_delay_days
CHUNK = 2000  # transactions a request, as `traffic run` sends them (World.chunk)
HTTP_PORT = 8104
ISO = "%Y-%m-%dT%H:%M:%S%.f+00:00"


def scratch_project(folder: Path) -> Path:
    for name in COPIED:
        source, target = ROOT / name, folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, symlinks=True)  # the feature repo's link to the sources stays relative
        else:
            shutil.copy2(source, target)
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


def traffic_over_http(days: int, runs: int) -> dict:
    """Per run, on a fresh scratch copy and its own `bentoml serve`: `traffic run --url`, then the same service's plain
    /predict_batch one request at a time and four at a time. Medians over runs; the ratio pairs each run's traffic
    with its own service's plain throughput."""
    summaries, plain = [], {1: [], 4: []}
    for run in range(runs):
        summary, rates = _http_run(days, run)
        summaries.append(summary)
        for connections, rate in rates.items():
            plain[connections].append(rate)
    driven = [s["sent"] / s["send_seconds"] for s in summaries]
    ratios = [d / p for d, p in zip(driven, plain[1], strict=True)]
    return {"runs": summaries, "answered_per_second_while_sending": [round(d) for d in driven],
            "median_answered_per_second_while_sending": round(statistics.median(driven)),
            "plain_predict_batch": {f"c{c}": {"connections": c, "transactions_per_request": CHUNK,
                                              "transactions_per_second": [round(r) for r in rates],
                                              "median_transactions_per_second": round(statistics.median(rates))}
                                    for c, rates in plain.items()},
            "ratios_to_plain_one_at_a_time": [round(r, 3) for r in ratios],
            "ratio_to_plain_one_at_a_time": round(statistics.median(ratios), 3)}  # fmt: skip


def _http_run(days: int, run: int) -> tuple[dict, dict[int, float]]:
    from bench.bench_serve import _process

    with tempfile.TemporaryDirectory() as folder:
        project = scratch_project(Path(folder))
        os.environ["FRAUD_DETECTION_HOME"] = str(project)
        serve = [str(ROOT / ".venv/bin/bentoml"), "serve", "fraud_detection.serving.service:FraudService", "--port",
                 str(HTTP_PORT)]  # fmt: skip
        with _process(serve, HTTP_PORT) as url:
            command = [str(ROOT / ".venv/bin/fraud-detection"), "traffic", "run", "--days", str(days), "--url", url,
                       "--json"]  # fmt: skip
            out = subprocess.run(command, cwd=project, check=True, capture_output=True, text=True).stdout
            summary = json.loads(out[out.index("{") :])
            rates = {c: _plain_rate(url, project, days + 1 + 2 * run + i, c) for i, c in enumerate((1, 4))}
    return summary, rates


def _plain_rate(url: str, project: Path, days_after: int, connections: int) -> float:
    """/predict_batch transactions a second with `connections` requests in flight, over the data's last day re-dated
    `days_after` days later (new ids), in requests of the traffic command's chunk size."""
    import httpx

    last = sorted((project / "data/02_intermediate/transactions").glob("date=*"))[-1]
    day = pl.read_parquet(last / "part-0.parquet").sort("tx_datetime")
    shifted = day.select(
        transaction_id=pl.col("transaction_id") + days_after * 100_000_000,
        tx_datetime=(pl.col("tx_datetime") + timedelta(days=days_after)).dt.to_string(ISO),
        customer_id="customer_id", terminal_id="terminal_id", tx_amount="tx_amount",
    ).to_dicts()  # fmt: skip
    bodies = [orjson.dumps({"transactions": shifted[i : i + CHUNK]}) for i in range(0, len(shifted), CHUNK)]
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=120) as client, ThreadPoolExecutor(connections) as pool:
        statuses = list(pool.map(lambda body: client.post("/predict_batch", content=body,
                                                          headers={"content-type": "application/json"}
                                                          ).status_code, bodies))  # fmt: skip
    if set(statuses) != {200}:
        raise RuntimeError(f"/predict_batch answered {sorted(set(statuses))}")
    return len(shifted) / (time.perf_counter() - started)


def consumer_rate() -> tuple[float, int, int]:
    """Label events applied a second through the SQLite online store (in a scratch copy), as they arrive on a day D:
    the delayed labels of day D - delay's transactions (each fraud changes its terminal's row: one write), after the
    updater has seen the days since. Returns (events a second, events, rows written)."""
    from fraud_detection.feature_store.dataset import FeatureStoreDataset
    from fraud_detection.feature_store.online import OnlineUpdaterSink

    with tempfile.TemporaryDirectory() as folder:
        project = scratch_project(Path(folder))
        history = pl.read_parquet(project / "data/02_intermediate/transactions/*/part-0.parquet")
        history = history.with_columns(
            tx_us=pl.col("tx_datetime").dt.epoch("us"), day=pl.col("tx_datetime").dt.epoch("us") // MICROS_PER_DAY
        )
        day = int(history["day"].max())  # the data's last day plays D
        first = day - DELAY
        updater, pending = updater_from_history(history.filter(pl.col("day") < first), DELAY, first * MICROS_PER_DAY)
        applier = OutcomeApplier(updater, pending, None)
        for number in range(first, day + 1):
            applier.start_day(number)
            if number < day:
                today = history.filter(pl.col("day") == number)
                columns = ("transaction_id", "customer_id", "terminal_id", "tx_us", "tx_amount")
                applier.add_transactions(*(today[name].to_list() for name in columns))
        store = FeatureStoreDataset(str(project / "data/05_feature_store/registry.db"),
                                    {"type": "sqlite", "path": str(project / "data/05_feature_store/online.db")},
                                    {"type": "duckdb"}).load()  # fmt: skip
        writes = []
        sink = OnlineUpdaterSink(store)
        applier.sink = _Counting(sink, writes)
        labelled = history.filter(pl.col("day") == first).select("transaction_id", "tx_fraud", "tx_datetime")
        events = [label_event(t, f, moment + timedelta(days=DELAY), "delayed") for t, f, moment in labelled.iter_rows()]
        started = time.perf_counter()
        for start in range(0, len(events), 10_000):
            applier.apply(events[start : start + 10_000])
        return len(events) / (time.perf_counter() - started), len(events), len(writes)


def _per_transaction(runs: list[dict]) -> dict[str, float]:
    """Where a run's time goes, in microseconds a transaction (medians over runs), beside the target's budget: the
    setup, the days' rollovers (every entity's daily row computed and written), the scoring (waiting for the
    detector's answers), the rest (labels published and applied, the updater's own transactions, the state saved)."""

    def median(part) -> float:
        return round(statistics.median(part(r) * 1e6 / r["sent"] for r in runs), 1)

    parts = {
        "setup": median(lambda r: r["setup_seconds"]),
        "rollover": median(lambda r: r["rollover_seconds"]),
        "scoring": median(lambda r: r["send_seconds"]),
        "rest": median(lambda r: r["seconds"] - r["setup_seconds"] - r["rollover_seconds"] - r["send_seconds"]),
    }
    return parts | {"total": median(lambda r: r["seconds"]), "budget_at_target": round(1e6 / TARGET_TX_PER_S, 1)}


class _Counting:
    def __init__(self, sink, writes: list) -> None:
        self._sink, self._writes = sink, writes

    def terminals(self, rows: dict[int, tuple[int, dict]]) -> None:
        self._writes.extend(rows)
        self._sink.terminals(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--days", type=int, default=2)
    args = parser.parse_args()
    runs = [traffic_run(args.days) for _ in range(args.runs)]
    http = traffic_over_http(args.days, args.runs)
    consumed = [consumer_rate() for _ in range(args.runs)]
    rates = [rate for rate, _, _ in consumed]
    figures = {
        "machine": machine(),
        "traffic_in_process": {
            "days": args.days, "runs": runs,
            "median_transactions_per_second": statistics.median(r["transactions_per_second"] for r in runs),
            "median_transactions_per_second_after_setup": round(statistics.median(
                r["sent"] / (r["seconds"] - r["setup_seconds"]) for r in runs), 1),
            "median_wall_seconds": statistics.median(r["wall_seconds"] for r in runs),
            "median_setup_seconds": statistics.median(r["setup_seconds"] for r in runs),
            "median_send_seconds": statistics.median(r["send_seconds"] for r in runs),
            "median_rollover_seconds": statistics.median(r["rollover_seconds"] for r in runs),
            "microseconds_per_transaction": _per_transaction(runs),
            "target_transactions_per_second": TARGET_TX_PER_S,
        },
        "traffic_over_http": http,
        "label_consumer_sqlite": {
            "events": consumed[0][1], "rows_written": consumed[0][2], "events_per_second": [round(r) for r in rates],
            "median_events_per_second": round(statistics.median(rates)),
            "target_events_per_second": TARGET_LABELS_PER_S,
        },
    }  # fmt: skip
    print(json.dumps(figures, indent=2))
    print(f"wrote {save('traffic', figures)}")


if __name__ == "__main__":
    main()
