"""Ingestion of the default-size data: read the source parquet, validate, write day partitions + quarantine.

Baseline, side by side: reading and writing the same data with the same writer, without validation, so the ratio
is the cost of validation itself. The Spark engine (local[*]) is reported too; on 2 cores it is expected to be
slower: it exists for clusters.

Run: uv run python -m bench.bench_ingest [--runs 5] [--spark-runs 1]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import polars as pl

from bench.timing import default_size_simulation, median_seconds, params, save
from fraud_detection.datasets import ParquetDataset, PartitionedParquetDataset
from fraud_detection.ingestion.ingest import ingest
from fraud_detection.ingestion.params import IngestParams
from fraud_detection.simulation.simulator import simulate_transactions


def main(runs: int, spark_runs: int) -> None:
    project = params()  # params.yaml `ingest` (its engine set per run) and `spark`
    frame = simulate_transactions(default_size_simulation())
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "source.parquet"
        ParquetDataset(str(source)).save(frame)
        transactions = PartitionedParquetDataset(str(Path(tmp) / "transactions"), "tx_datetime")
        quarantine = ParquetDataset(str(Path(tmp) / "quarantine.parquet"))

        def read_and_write() -> None:
            transactions.save(pl.read_parquet(source))

        def stage(engine: str) -> None:
            ingest_params = IngestParams.model_validate({**project.ingest.model_dump(), "engine": engine})
            result = ingest(pl.read_parquet(source), ingest_params, project.spark)
            transactions.save(result.transactions)
            quarantine.save(result.quarantine)

        baseline, baseline_runs = median_seconds(read_and_write, runs)
        polars_s, polars_runs = median_seconds(lambda: stage("polars"), runs)
        spark_s, spark_runs_s = median_seconds(lambda: stage("spark"), spark_runs) if spark_runs else (None, [])
    save(
        "ingest",
        {
            "runs": runs,
            "rows": frame.height,
            "read_write_only_median_s": round(baseline, 3),
            "read_write_only_runs_s": [round(t, 3) for t in baseline_runs],
            "polars_median_s": round(polars_s, 3),
            "polars_runs_s": [round(t, 3) for t in polars_runs],
            "polars_rows_per_s": round(frame.height / polars_s),
            "polars_vs_read_write_only": round(polars_s / baseline, 2),
            "spark_local_median_s": round(spark_s, 3) if spark_s else None,
            "spark_local_runs_s": [round(t, 3) for t in spark_runs_s],
            "target_polars_s": 10.0,
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--spark-runs", type=int, default=0)
    args = parser.parse_args()
    main(args.runs, args.spark_runs)
