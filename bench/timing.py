"""Benchmark helpers: medians over repeated runs, ratios against a baseline, results saved under reports/bench/."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fraud_detection.runtime.params import Params
    from fraud_detection.simulation.simulator import SimulationConfig

RESULTS = Path(__file__).resolve().parents[1] / "reports" / "bench"


def median_seconds(work: Callable[[], object], runs: int) -> tuple[float, list[float]]:
    """Median wall time of `work` over `runs` runs (after one untimed warm-up), and every run's time."""
    work()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def machine() -> dict:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def save(name: str, figures: dict) -> Path:
    """Write `reports/bench/<name>.json` and print the figures."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": name, "when": datetime.now(UTC).isoformat(timespec="seconds"),
              "machine": machine(), **figures}  # fmt: skip
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return path


def params() -> Params:
    """The project's params.yaml, checked, as the stages read it."""
    from fraud_detection.runtime.project import project_params

    return project_params(root=RESULTS.parents[1])


def default_size_simulation() -> SimulationConfig:
    """params.yaml `simulate` at the handbook's size (the `default` profile) and without drift: what the handbook's
    figures are for, whatever profile or drift params.yaml selects."""
    from fraud_detection.simulation.params import SimulateParams
    from fraud_detection.simulation.simulator import SimulationConfig

    simulate = params().simulate.model_dump()
    return SimulationConfig.from_params(SimulateParams.model_validate({**simulate, "profile": "default", "drift": []}))


def default_project() -> tuple[Params, object]:
    """For a benchmark of the default run (`make repro` first): telemetry off, quiet logs, the project root as the
    working directory; returns params.yaml (checked, as the stages read it) and the address of the project's MLflow
    registry."""
    import logging

    from fraud_detection.registry.registry import RegistryAddress
    from fraud_detection.runtime.telemetry import disable_telemetry

    root = RESULTS.parents[1]
    disable_telemetry()
    logging.basicConfig(level=logging.WARNING)
    os.chdir(root)
    return params(), RegistryAddress(
        f"sqlite:///{root / 'data/mlflow/mlflow.db'}", str(root / "data/mlflow/registry.lock")
    )
