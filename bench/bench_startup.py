"""Start-up of a stage's Kedro run, side by side with Kedro's own start-up.

A stage should spend its start-up on its own pipeline: `kedro run --pipelines simulate --params
simulate.profile=small` (the smallest stage on the smallest data: mostly start-up) is timed against `kedro --version`
(the floor: Kedro's CLI and nothing of ours), and a run with a bad parameter shows how fast a typo fails. Each runs
in a scratch copy of the project's configuration (the runs write the simulate stage's output there, not in data/).

Run: uv run python -m bench.bench_startup [--runs 7]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.timing import RESULTS, median_seconds, save

ROOT = RESULTS.parents[1]
KEDRO = str(Path(sys.executable).parent / "kedro")
COMMANDS = {
    "kedro_version": ([KEDRO, "--version"], 0),
    "simulate_small": ([KEDRO, "run", "--pipelines", "simulate", "--params", "simulate.profile=small"], 0),
    "bad_param": ([KEDRO, "run", "--pipelines", "simulate", "--params", "train.batch_size=-5"], 2),
}
TARGET_RATIO = 2.0


def scratch_project(folder: Path) -> Path:
    """The project's configuration (pyproject.toml, params.yaml, conf/) in `folder`; the code is the installed one."""
    for name in ("pyproject.toml", "params.yaml"):
        shutil.copy2(ROOT / name, folder / name)
    shutil.copytree(ROOT / "conf", folder / "conf", ignore=shutil.ignore_patterns("local"))
    (folder / "conf" / "local").mkdir()
    (folder / "src").mkdir()  # Kedro wants the source folder; the code is the installed package
    return folder


def timed(command: list[str], expected_status: int, cwd: Path, runs: int) -> tuple[float, list[float]]:
    def run() -> None:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
        if done.returncode != expected_status:
            raise RuntimeError(f"{' '.join(command)} exited {done.returncode}, expected {expected_status}:\n"
                               f"{done.stdout[-2000:]}{done.stderr[-2000:]}")  # fmt: skip

    return median_seconds(run, runs)


def main(runs: int) -> None:
    figures: dict[str, object] = {"runs": runs}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        project = scratch_project(Path(tmp))
        for name, (command, status) in COMMANDS.items():
            median, all_runs = timed(command, status, project, runs)
            figures[f"{name}_median_s"] = round(median, 3)
            figures[f"{name}_runs_s"] = [round(t, 3) for t in all_runs]
    baseline = figures["kedro_version_median_s"]
    figures["simulate_small_over_kedro_version"] = round(figures["simulate_small_median_s"] / baseline, 2)
    figures["bad_param_over_kedro_version"] = round(figures["bad_param_median_s"] / baseline, 2)
    figures["target_ratio"] = TARGET_RATIO
    save("startup", figures)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    main(parser.parse_args().runs)
