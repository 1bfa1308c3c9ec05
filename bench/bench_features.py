"""Features and the feature store on the default-size data (about 1.79 M transactions).

Side by side, in the same run:
- `features` stage work (state tables + every transaction's features, polars) against the customer windows alone
  computed with one polars rolling group-by (the smallest piece of the same job);
- the training set through Feast's offline store (duckdb, point-in-time join + on-demand view) against a plain
  polars `join_asof` of the same frames followed by the same feature formulas;
- online retrieval of one feature vector (feature service incl. the on-demand part), in-process, SQLite and Redis:
  p50 and p99 over `--calls` calls, after materializing the last day;
- the Spark engine's state tables and features (`--spark`, one run: it exists for clusters, not for 2 cores).

Run: uv run python -m bench.bench_features [--runs 3] [--calls 10000] [--spark]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from bench.timing import default_size_simulation, median_seconds, params, save
from fraud_detection.feature_store.dataset import apply_and_materialize, open_store, repo_config
from fraud_detection.feature_store.definitions import SOURCE_PATHS
from fraud_detection.feature_store.online import OnlineFeatures, day_start
from fraud_detection.features import polars_engine
from fraud_detection.features.definitions import INTRADAY_STATE, MICROS_PER_DAY, STATE_COLUMNS, transaction_features
from fraud_detection.pipelines.training_set.nodes import build_training_set
from fraud_detection.runtime.telemetry import disable_telemetry
from fraud_detection.simulation.simulator import simulate_transactions

DELAY = 7


def customer_windows_rolling(tx: pl.DataFrame) -> pl.DataFrame:
    """Baseline: count and mean amount over 1/7/30 days per customer, one rolling group-by."""
    return (
        tx.sort("tx_datetime")
        .rolling("tx_datetime", period="30d", group_by="customer_id")
        .agg(pl.len().alias("n30"), pl.col("tx_amount").mean().alias("m30"))
    )


def features_stage(tx: pl.DataFrame) -> pl.DataFrame:
    return polars_engine.transaction_features(tx, polars_engine.state_tables(tx, DELAY))


def join_asof_baseline(tx: pl.DataFrame, tables: polars_engine.StateTables) -> pl.DataFrame:
    """The training set by plain polars: backward as-of joins on each stored view, then the same formulas."""
    entity = tx.sort("tx_datetime").with_columns(pl.col("tx_datetime").alias("event_timestamp"))
    joined = entity
    for table, key in ((tables.customer_daily, "customer_id"), (tables.terminal_daily, "terminal_id"),
                       (tables.customer_intraday, "customer_id")):  # fmt: skip
        state = table.drop("day", INTRADAY_STATE, strict=False).sort("event_timestamp")
        joined = joined.join_asof(state, on="event_timestamp", by=key, strategy="backward", tolerance="1d")
    state = {c: joined[c].to_numpy() for c in STATE_COLUMNS}
    features = transaction_features(state, joined["tx_datetime"].dt.epoch("us").to_numpy(), joined["tx_amount"])
    return joined.select(entity.columns).with_columns(pl.Series(k, v) for k, v in features.items())


def online_latency(root: Path, online: str, tx: pl.DataFrame, calls: int) -> dict:
    config_online = {"type": "sqlite", "path": "data/bench/online.db"} if online == "sqlite" else {
        "type": "redis", "connection_string": "127.0.0.1:6379,db=0"}  # fmt: skip
    config = repo_config("data/bench/registry.db", config_online, {"type": "duckdb"}, str(root),
                                       project=f"bench_{online}")  # fmt: skip
    store = open_store(config)
    last_day = tx["tx_datetime"].dt.epoch("us").max() // MICROS_PER_DAY
    apply_and_materialize(store, day_start(last_day + 1))
    online_features = OnlineFeatures(store, "fraud_model_v1")
    rng = np.random.default_rng(0)
    customers, terminals = rng.integers(0, 5000, calls), rng.integers(0, 10_000, calls)
    moment = day_start(last_day + 1) + timedelta(hours=12)
    for i in range(200):  # warm-up
        online_features.vector(int(customers[i]), int(terminals[i]), moment, 50.0)
    times = []
    for c, k in zip(customers, terminals, strict=True):
        start = time.perf_counter()
        online_features.vector(int(c), int(k), moment, 50.0)
        times.append(time.perf_counter() - start)
    if online == "redis":
        store.teardown()
    ms = np.array(times) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3)}


def spark_figures(tx: pl.DataFrame) -> dict:
    from fraud_detection.features import spark_engine
    from fraud_detection.runtime.spark import get_spark

    spark = get_spark(params().spark)
    start = time.perf_counter()
    tables = spark_engine.state_tables(spark, tx, DELAY)
    middle = time.perf_counter()
    spark_engine.transaction_features(spark, tx, tables)
    end = time.perf_counter()
    return {"spark_state_tables_s": round(middle - start, 2), "spark_transaction_features_s": round(end - middle, 2)}


def main(runs: int, calls: int, spark: bool) -> None:
    disable_telemetry()
    tx = simulate_transactions(default_size_simulation())
    baseline, _ = median_seconds(lambda: customer_windows_rolling(tx), runs)
    stage, stage_runs = median_seconds(lambda: features_stage(tx), runs)
    tables = polars_engine.with_stored_intraday(polars_engine.state_tables(tx, DELAY))  # as the stage writes them
    figures = {"transactions": tx.height, "runs": runs,
               "features_polars_median_s": round(stage, 3), "features_polars_runs_s": [round(t, 3) for t in stage_runs],
               "customer_windows_rolling_baseline_s": round(baseline, 3),
               "features_vs_rolling_baseline": round(stage / baseline, 1)}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, table in tables._asdict().items():
            (root / SOURCE_PATHS[name]).parent.mkdir(parents=True, exist_ok=True)
            table.write_parquet(root / SOURCE_PATHS[name])
        cwd = os.getcwd()
        os.chdir(root)  # Feast's duckdb store reads relative source paths from the working directory
        try:
            store = open_store(repo_config("data/registry.db", {
                "type": "sqlite", "path": "data/online.db"}, {"type": "duckdb"}, str(root)))  # fmt: skip
            apply_and_materialize(store, datetime(2018, 4, 2, tzinfo=UTC))
            training_set = params().training_set
            feast_s, feast_runs = median_seconds(lambda: build_training_set(store, tx, training_set), runs)
            asof_s, asof_runs = median_seconds(lambda: join_asof_baseline(tx, tables), runs)
            figures |= {"training_set_feast_median_s": round(feast_s, 3),
                        "training_set_feast_runs_s": [round(t, 3) for t in feast_runs],
                        "training_set_join_asof_median_s": round(asof_s, 3),
                        "training_set_join_asof_runs_s": [round(t, 3) for t in asof_runs],
                        "feast_vs_join_asof": round(feast_s / asof_s, 2)}  # fmt: skip
            for backend in ("sqlite", "redis"):
                figures[f"online_vector_{backend}_{calls}_calls"] = online_latency(root, backend, tx, calls)
        finally:
            os.chdir(cwd)
    if spark:
        figures |= spark_figures(tx)
    save("features", figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--spark", action="store_true")
    args = parser.parse_args()
    main(args.runs, args.calls, args.spark)
