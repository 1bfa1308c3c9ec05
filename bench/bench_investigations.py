"""What investigation labels are worth (issue 22, item 8): 14 days after the data with a compromised terminal cluster
(`simulate.drift` terminal_cluster from the first played day), played twice in process, with
`feedback.investigations_per_day` 0 and 100, in scratch copies of the project's serving state.

Per run and day: the served champion's AP and card precision@100 on the day's transactions (against the truth), the
share of that day's frauds labelled within a day of their transaction, and, for the cluster's terminals, when the
risk feature the service read (`terminal_risk_30d`, from the prediction log's vectors) first turned non-zero after
the cluster began. Results: reports/bench/investigations.json.

Needs `make repro` first. Run: uv run python -m bench.bench_investigations [--days 14]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from bench.bench_traffic import ROOT, scratch_project
from bench.timing import machine, save
from fraud_detection.evaluation.metrics import average_precision, card_precision_at_k
from fraud_detection.feedback.labels import LabelFiles, events_frame
from fraud_detection.serving.prediction_log import read_json_lines
from fraud_detection.simulation.drift import TERMINAL_CLUSTER_SCENARIO

CLUSTER = {"kind": "terminal_cluster", "days": 14, "center": [50, 50], "radius": 10, "fraud_fraction": 0.5}


def play(days: int, investigations: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        project = scratch_project(Path(folder))
        params = yaml.safe_load((project / "params.yaml").read_text())
        first_day = params["simulate"]["profiles"][params["simulate"]["profile"]]["n_days"]
        params["simulate"]["drift"] = [{**CLUSTER, "start_day": first_day}]
        params["feedback"]["investigations_per_day"] = investigations
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        command = [str(ROOT / ".venv/bin/fraud-detection"), "traffic", "run", "--days", str(days), "--in-process"]
        subprocess.run(command, cwd=project, check=True, capture_output=True, text=True)
        traffic = pl.read_parquet(project / "data/01_raw/traffic/*/part-0.parquet")
        served = pl.DataFrame([{"transaction_id": r["transaction_id"], "score": r["fraud_probability"],
                                "terminal_risk_30d": r["features"]["terminal_risk_30d"]}
                               for r in read_json_lines(project / "data/08_serving/predictions")
                               if r["role"] == "served"])  # fmt: skip
        labels = events_frame(LabelFiles(project / "data/08_serving/labels").events())
    joined = traffic.join(served, on="transaction_id").join(labels, on="transaction_id", how="left")
    days_figures = _per_day(joined)
    means = {f"mean_{name}": round(float(np.mean([d[name] for d in days_figures])), 4)
             for name in ("average_precision", "card_precision_at_100")}  # fmt: skip
    return {"investigations_per_day": investigations, **means, "days": days_figures, "cluster": _cluster(joined)}


def _per_day(joined: pl.DataFrame) -> list[dict]:
    out = []
    for (day,), rows in joined.group_by(pl.col("tx_datetime").dt.date(), maintain_order=True):
        frauds = rows.filter(pl.col("tx_fraud") == 1)
        fast = frauds.filter((pl.col("known_at") - pl.col("tx_datetime")) <= pl.duration(days=1))
        out.append({
            "day": day.isoformat(), "transactions": rows.height, "frauds": frauds.height,
            "average_precision": round(average_precision(rows["tx_fraud"].to_numpy(), rows["score"].to_numpy()), 4),
            "card_precision_at_100": round(card_precision_at_k(rows.select(
                "tx_datetime", "customer_id", "tx_fraud", "score"), 100), 4),
            "frauds_labelled_within_a_day": round(fast.height / frauds.height, 4) if frauds.height else None,
        })  # fmt: skip
    return sorted(out, key=lambda d: d["day"])


def _cluster(joined: pl.DataFrame) -> dict:
    """The cluster's terminals (any scenario-5 fraud): days from the cluster's start to the first served request
    whose terminal_risk_30d was non-zero, per terminal; their median."""
    start = joined["tx_datetime"].min()
    terminals = joined.filter(pl.col("tx_fraud_scenario") == TERMINAL_CLUSTER_SCENARIO)["terminal_id"].unique()
    at = joined.filter(pl.col("terminal_id").is_in(terminals.implode()))
    first = at.filter(pl.col("terminal_risk_30d") > 0).group_by("terminal_id").agg(pl.col("tx_datetime").min())
    days = ((first["tx_datetime"] - start).dt.total_seconds() / 86_400).to_numpy()
    return {
        "terminals": terminals.len(),
        "turned_non_zero": first.height,
        "median_days_to_non_zero_risk": round(float(np.median(days)), 2) if len(days) else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=14)
    args = parser.parse_args()
    runs = [play(args.days, investigations) for investigations in (0, 100)]
    figures = {"machine": machine(), "drift": CLUSTER, "runs": runs}
    print(json.dumps(figures, indent=2))
    print(f"wrote {save('investigations', figures)}")


if __name__ == "__main__":
    main()
