"""Monitoring on the default-size data (run `make repro` first).

Timed, medians over `--runs` runs:
- our drift table (PSI, KS + p-value, Jensen-Shannon, means) of every feature and the score on the whole data
  (1.79 M rows: the first half of the days against the second half), side by side with the plain way (per column
  `scipy.stats.ks_2samp` + `numpy.histogram` over quantile edges + `scipy.spatial.distance.jensenshannon`) and with
  the floor (sorting both samples of every column once);
- the monitor stage's nodes on the default week (reference: the champion's 28-day training window, about 275 k
  rows; current: the latest 7 days, about 70 k), node by node, and `kedro run --pipelines monitor` as a user runs it;
- Evidently's drift preset against the sample size (`monitor.evidently.max_rows`), and how far the sample's
  statistics are from the full window's (our table on the sample against our table on every row).
Results: reports/bench/monitor.json.

Run: uv run python -m bench.bench_monitor [--runs 5]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from bench.timing import default_project, median_seconds, save
from fraud_detection.features.definitions import FEATURES
from fraud_detection.monitoring import evidently_report
from fraud_detection.monitoring.drift import drift_table
from fraud_detection.monitoring.params import MonitorParams
from fraud_detection.pipelines.monitor import nodes
from fraud_detection.runtime.params import Params

ROOT = Path(__file__).resolve().parents[1]
FEATURES_TABLE = ROOT / "data/04_feature/transaction_features.parquet"
SAMPLE_SIZES = (5_000, 20_000, 70_000)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    params, address = default_project()
    features = pl.scan_parquet(FEATURES_TABLE)
    models = nodes.monitored_models(address, params.register.model_name, {})
    figures = {"drift_table_full_data": _full_data(features, models["champion"], args.runs)}
    windows = nodes.build_windows(features, pl.DataFrame(), models, params.monitor, params.features.label_delay_days)
    figures["stage_nodes"] = _nodes(features, address, models, windows, params, args.runs)
    figures["kedro_run_seconds"] = _kedro_run(max(1, args.runs // 2))
    figures["evidently_by_sample_size"] = _evidently(windows, params.monitor)
    save("monitor", figures)


def _full_data(features: pl.LazyFrame, champion: nodes.MonitoredModel, runs: int) -> dict:
    frame = features.select(*FEATURES, "tx_datetime").collect()
    frame = frame.with_columns(pl.Series("score", champion.predict(frame.select(FEATURES).to_numpy())))
    middle = frame["tx_datetime"].min() + (frame["tx_datetime"].max() - frame["tx_datetime"].min()) / 2
    columns = [*FEATURES, "score"]
    first, second = (frame.filter(condition) for condition in (pl.col("tx_datetime") < middle,
                                                                pl.col("tx_datetime") >= middle))  # fmt: skip
    reference = {c: first[c].to_numpy() for c in columns}
    current = {c: second[c].to_numpy() for c in columns}
    ours, _ = median_seconds(lambda: drift_table(reference, current), runs)
    plain, _ = median_seconds(lambda: _plain_table(reference, current), max(1, runs // 2))
    floor, _ = median_seconds(lambda: [(np.sort(reference[c]), np.sort(current[c])) for c in columns], runs)
    return {"rows": len(frame), "reference_rows": len(first), "current_rows": len(second), "columns": len(columns),
            "ours_seconds": round(ours, 3), "plain_scipy_numpy_seconds": round(plain, 3),
            "sort_floor_seconds": round(floor, 3), "speedup_vs_plain": round(plain / ours, 1),
            "ratio_to_sort_floor": round(ours / floor, 2)}  # fmt: skip


def _plain_table(reference: dict, current: dict) -> list[tuple]:
    """The straightforward implementation: SciPy and numpy per column, nothing shared between the statistics."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import ks_2samp

    rows = []
    for name, r in reference.items():
        c = current[name]
        edges = np.unique(np.quantile(r, np.linspace(0, 1, 11)))
        edges[0], edges[-1] = -np.inf, np.inf
        rs = np.maximum(np.histogram(r, edges)[0] / len(r), 1e-4)
        cs = np.maximum(np.histogram(c, edges)[0] / len(c), 1e-4)
        ks = ks_2samp(r, c, method="asymp")
        rows.append((name, float(np.sum((cs - rs) * np.log(cs / rs))), ks.statistic, ks.pvalue,
                     float(jensenshannon(rs, cs))))  # fmt: skip
    return rows


def _nodes(features: pl.LazyFrame, address, models: dict, windows: nodes.Windows, params: Params, runs: int) -> dict:
    monitor = params.monitor
    drift = nodes.compute_drift(windows, monitor)
    levelled = nodes.drift_levels(drift, monitor)
    decision = nodes.decide_action(drift, windows, monitor, params.register.gate, params.evaluate.top_k)
    timings = {
        "build_windows (read + score 3 windows)": lambda: nodes.build_windows(
            features, pl.DataFrame(), models, monitor, params.features.label_delay_days),
        "compute_drift (our table, every row)": lambda: nodes.compute_drift(windows, monitor),
        "evidently_reports (drift + quality, sampled; the run's page)": lambda: nodes.evidently_reports(
            windows, levelled, decision, monitor),
    }  # fmt: skip
    result = {"reference_rows": len(windows.reference), "current_rows": len(windows.current),
              "labelled_rows": len(windows.labelled)}  # fmt: skip
    start = time.perf_counter()
    nodes.monitored_models(address, params.register.model_name, {})
    result["load_models_seconds"] = round(time.perf_counter() - start, 3)
    for name, work in timings.items():
        seconds, _ = median_seconds(work, runs if "evidently" not in name else max(1, runs // 2))
        result[name] = round(seconds, 3)
    return result


def _kedro_run(runs: int) -> float:
    """The stage as a user runs it (its outputs are rewritten with the same content)."""
    kedro = str(Path(sys.executable).parent / "kedro")
    seconds, _ = median_seconds(
        lambda: subprocess.run([kedro, "run", "--pipelines", "monitor"], cwd=ROOT, check=True, capture_output=True),
        runs,
    )
    return round(seconds, 2)


def _evidently(windows: nodes.Windows, monitor: MonitorParams) -> list[dict]:
    """Evidently's drift report time and the sample's largest PSI / KS error against every row, by sample size."""
    columns, bins = nodes.DRIFT_COLUMNS, monitor.bins
    full = drift_table(nodes._columns(windows.reference), nodes._columns(windows.current))
    rows = []
    for size in SAMPLE_SIZES:
        reference = evidently_report.sample(windows.reference, size, 0)
        current = evidently_report.sample(windows.current, size, 0)
        start = time.perf_counter()
        evidently_report.drift_report(reference, current, columns, evidently_report.QUANTILE_PSI, bins)
        seconds = time.perf_counter() - start
        sampled = drift_table(nodes._columns(reference), nodes._columns(current))
        rows.append({"max_rows": size, "reference_rows": len(reference), "current_rows": len(current),
                     "evidently_seconds": round(seconds, 2),
                     "max_psi_error": round(float((sampled["psi"] - full["psi"]).abs().max()), 4),
                     "max_ks_error": round(float((sampled["ks_statistic"] - full["ks_statistic"]).abs().max()), 4),
                     "ks_error_bound_95": round(_dkw_bound(len(reference), len(current)), 4)})  # fmt: skip
    return rows


def _dkw_bound(n: int, m: int) -> float:
    """With 95 % probability, each sample's empirical CDF is within sqrt(ln(2 / 0.025) / 2n) of its window's
    (Dvoretzky-Kiefer-Wolfowitz, Massart's constant; 0.025 each), so the KS statistic moves by at most the sum."""
    return float(np.sqrt(np.log(2 / 0.025) / (2 * n)) + np.sqrt(np.log(2 / 0.025) / (2 * m)))


if __name__ == "__main__":
    main()
