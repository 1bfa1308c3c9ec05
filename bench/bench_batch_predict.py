"""The batch_predict stage on the default-size data (run `make repro` first).

Timed, medians over `--runs` runs:
- scoring alone: the champion's scorer on every transaction's features (1.79 M rows), rows/s;
- one day end to end (read the day's features from the features table, score, write the predictions parquet),
  side by side with the same read and write without scoring; the same for every day at once (1.79 M rows), where
  the per-file costs that dominate a day's 9,800 rows are spread;
- the stage's work for one day (score, gate, queue, write, publish the risk table) and for a 30-day backfill, in a
  temporary risk store and output folder (the project's are not touched);
- `kedro run --pipelines batch_predict` as a user runs it (a re-run: the published day is skipped), against
  Kedro's start-up.
Results: reports/bench/batch_predict.json.

Run: uv run python -m bench.bench_batch_predict [--runs 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from bench.timing import default_project, median_seconds, save
from fraud_detection.batch.risk_store import SqliteRiskStore
from fraud_detection.batch.scoring import day_rows, score_polars
from fraud_detection.datasets import DatePartitionsDataset
from fraud_detection.features.definitions import FEATURES
from fraud_detection.pipelines.batch_predict.nodes import publish_batches, score_days
from fraud_detection.runtime.params import Params

ROOT = Path(__file__).resolve().parents[1]
FEATURES_TABLE = ROOT / "data/04_feature/transaction_features.parquet"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    params, address = default_project()
    from fraud_detection.registry.loading import load_model

    champion = load_model(address.open(params.register.model_name), "champion")
    version, scorer = str(champion.version), champion.scorer
    features = pl.scan_parquet(FEATURES_TABLE)
    last = features.select(pl.col("tx_datetime").max()).collect().item().date()
    matrix = features.select(FEATURES).collect().to_numpy().astype(np.float64)
    figures: dict = {"model_version": version, "transactions": len(matrix)}

    seconds, _ = median_seconds(lambda: scorer.predict_proba(matrix), args.runs)
    figures["scoring_alone"] = {"seconds": round(seconds, 3), "rows_per_s": round(len(matrix) / seconds)}

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as folder:
        out = Path(folder) / "predictions.parquet"
        n = len(day_rows(features, last))

        def end_to_end() -> None:
            score_polars(day_rows(features, last), scorer.predict_proba).write_parquet(out)

        def read_and_write() -> None:
            day_rows(features, last).select("transaction_id", "tx_datetime", "customer_id", "terminal_id",
                                            "tx_amount").write_parquet(out)  # fmt: skip

        def all_days() -> None:
            score_polars(features.collect(), scorer.predict_proba).write_parquet(out)

        def all_days_read_and_write() -> None:  # the columns scoring reads; the keys written
            rows = features.collect()
            rows.select("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount").write_parquet(out)

        scored_s, _ = median_seconds(end_to_end, args.runs)
        io_s, _ = median_seconds(read_and_write, args.runs)
        figures["one_day"] = {
            "transactions": n,
            "seconds": round(scored_s, 4),
            "tx_per_s": round(n / scored_s),
            "read_and_write_only_seconds": round(io_s, 4),
            "read_and_write_only_tx_per_s": round(n / io_s),
        }
        all_s, _ = median_seconds(all_days, max(1, args.runs // 2))
        all_io_s, _ = median_seconds(all_days_read_and_write, max(1, args.runs // 2))
        figures["all_days_at_once"] = {
            "transactions": len(matrix),
            "seconds": round(all_s, 3),
            "tx_per_s": round(len(matrix) / all_s),
            "read_and_write_only_seconds": round(all_io_s, 3),
            "read_and_write_only_tx_per_s": round(len(matrix) / all_io_s),
        }
        figures["stage_one_day"] = _stage(features, [last], address, params, Path(folder), args.runs)
        month = [last - timedelta(days=29 - i) for i in range(30)]
        figures["stage_30_day_backfill"] = _stage(features, month, address, params, Path(folder), 1)
    figures["kedro_run"] = _kedro_runs(args.runs)
    save("batch_predict", figures)


def _stage(features: pl.LazyFrame, days: list[date], address, params: Params, folder: Path, runs: int) -> dict:
    """score_days + the files + publish, into a fresh store each run."""
    times = []
    for run in range(runs):
        store = SqliteRiskStore(folder / f"risk-{len(days)}-{run}.db")
        start = time.perf_counter()
        predictions, queues, _, passed, report = score_days(
            features, [d.isoformat() for d in days], address, store, params.batch_predict,
            params.register.model_name, params.spark,
        )  # fmt: skip
        DatePartitionsDataset(str(folder / f"predictions-{run}")).save(predictions)
        DatePartitionsDataset(str(folder / f"queue-{run}")).save(queues)
        final = publish_batches(passed, store, report)
        times.append(time.perf_counter() - start)
    return {"days": len(days), "published": len(final["published"]), "rejected": len(final["rejected"]),
            "median_seconds": round(float(np.median(times)), 3), "runs": [round(t, 3) for t in times]}  # fmt: skip


def _kedro_runs(runs: int) -> dict:
    """The stage re-run (the day is published: skipped) and Kedro's start-up; the stage's report is put back."""
    kedro, report = str(Path(sys.executable).parent / "kedro"), ROOT / "reports/batch_predict.json"
    kept = report.read_bytes() if report.exists() else None

    def stage() -> None:
        subprocess.run([kedro, "run", "--pipelines", "batch_predict"], cwd=ROOT, check=True, capture_output=True)

    def start_up() -> None:
        subprocess.run([kedro, "run", "--pipelines", "batch_predict", "--nodes", "plan"], cwd=ROOT, check=True,
                       capture_output=True)  # fmt: skip

    try:
        stage_s, _ = median_seconds(stage, max(1, runs // 2))
        start_s, _ = median_seconds(start_up, max(1, runs // 2))
    finally:
        if kept is not None:
            report.write_bytes(kept)
    return {"stage_rerun_seconds": round(stage_s, 2), "plan_node_only_seconds": round(start_s, 2)}


if __name__ == "__main__":
    main()
