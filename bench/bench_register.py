"""The `register` stage on the default-size data (run `make repro` first: it reads the candidate and training set).

In a temporary MLflow store (the project's registry is not touched), the saved candidate is logged twice (two
runs, as two trainings would); then, per repetition, a fresh registered model gets the first (floors only: one
model scored) and the second (gated against that champion: two models scored). Timed, side by side:
- the register node's work (registration with lineage, gate window scoring, single-row latency, alias move), split
  into its parts;
- the whole stage as a user runs it: `kedro run --pipelines register` in the project (an idempotent re-run: the
  version exists), against `kedro run` of the gate window node alone (Kedro's start-up and the catalog's loads).

Run: uv run python -m bench.bench_register [--runs 5] [--stage-runs 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import polars as pl

from bench.timing import save
from fraud_detection.datasets import FileHashDataset, JSONDataset
from fraud_detection.pipelines.register.nodes import gate_window, register_and_gate, version_lineage
from fraud_detection.registry.candidate import Candidate, CandidateDataset
from fraud_detection.registry.params import RegisterParams
from fraud_detection.registry.promotion import gate_decision
from fraud_detection.registry.registry import RegistryAddress
from fraud_detection.runtime.project import project_params
from fraud_detection.runtime.telemetry import disable_telemetry

ROOT = Path(__file__).resolve().parents[1]
CANDIDATE = ROOT / "data" / "06_models" / "candidate"
TRAINING_SET = ROOT / "data" / "05_model_input" / "training_set.parquet"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stage-runs", type=int, default=3)
    args = parser.parse_args()
    disable_telemetry()
    logging.basicConfig(level=logging.WARNING)
    params = project_params(root=ROOT)
    window = gate_window(pl.read_parquet(TRAINING_SET), params.train.holdout_days, params.features.label_delay_days)
    lineage_inputs = (FileHashDataset(str(TRAINING_SET)).load(), JSONDataset(str(ROOT / "reports/metrics.json")).load())
    gate = params.register.gate

    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        address = RegistryAddress(uri, f"{tmp}/registry.lock")
        first, second = (_logged_copy(Path(tmp) / f"candidate{i}", uri, tmp) for i in (1, 2))
        node = {"first (floors only)": [], "second (against the champion)": []}
        parts = {"register version": [], "gate scoring (both models)": [], "alias move": []}
        for run in range(args.runs):
            register = RegisterParams.model_validate({**params.register.model_dump(), "model_name": f"bench-{run}"})
            for label, candidate in zip(node, (first, second), strict=True):
                lineage = version_lineage(candidate, *lineage_inputs)
                start = time.perf_counter()
                register_and_gate(candidate, lineage, window, address, register)
                node[label].append(time.perf_counter() - start)
            registry = address.open(f"bench-parts-{run}", create=True)
            version = int(registry.register(first.run, version_lineage(first, *lineage_inputs)).version)
            registry.move("champion", version, "promote", "bench", "bench")
            start = time.perf_counter()
            number = int(registry.register(second.run, version_lineage(second, *lineage_inputs)).version)
            parts["register version"].append(time.perf_counter() - start)
            start = time.perf_counter()
            decision, _ = gate_decision(registry, number, window, gate)
            parts["gate scoring (both models)"].append(time.perf_counter() - start)
            start = time.perf_counter()
            registry.move(decision.alias, number, "gate", "bench", "bench")
            parts["alias move"].append(time.perf_counter() - start)

    stage = [_kedro("--pipelines", "register") for _ in range(args.stage_runs)]
    startup = [_kedro("--pipelines", "register", "--to-nodes", "gate_window") for _ in range(args.stage_runs)]
    save(
        "register",
        {
            "data": {"gate_window_rows": window.height, "gate_window_frauds": int(window["tx_fraud"].sum())},
            "register_node_s": {label: _median(times) for label, times in node.items()},
            "parts_s": {label: _median(times) for label, times in parts.items()},
            "kedro_run_register_s": _median(stage),
            "kedro_run_gate_window_node_only_s": _median(startup),
            "stage_minus_startup_s": statistics.median(stage) - statistics.median(startup),
        },
    )


def _logged_copy(folder: Path, uri: str, tmp: str) -> Candidate:
    """The project's candidate logged as a new run in the temporary store (a training's MLflow part)."""
    saved = CandidateDataset(str(CANDIDATE), "unused", "unused").load()
    example = pd.read_parquet(TRAINING_SET).head(5)[list(saved.scorer.features)]
    copy = Candidate(saved.scorer, {"bench": True}, dict(saved.metrics), [], dict(saved.tags), example)
    dataset = CandidateDataset(str(folder), uri, "bench", f"{tmp}/artifacts")
    dataset.save(copy)
    return dataset.load()


def _kedro(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kedro", "run", *args], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def _median(times: list[float]) -> dict:
    return {"median": statistics.median(times), "runs": times}


if __name__ == "__main__":
    main()
