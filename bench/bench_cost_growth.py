"""How cost grows: the data stages at 1x, 3x and 10x the default data, each a `kedro run` as a user runs it.

For each scale (1x: simulate profile `default`, 3x: `medium`, 10x: `large`; same days, 3x / 10x the customers and
terminals) a scratch copy of the committed project (`git archive HEAD`) runs `simulate`, then per engine `ingest`,
`features`, `materialize` and `training_set`, each a subprocess under `/usr/bin/time -v`: wall seconds, CPU seconds
(user + system: the machine may be shared) and peak resident memory (the largest process, as `time -v` reports it;
`peak_tree_rss_mb` sums the process tree, sampled, which counts Spark's JVM beside its Python driver). A step whose
process tree passes `--memory-limit-gb` is killed and recorded as failed with the memory it had reached, rather than
taking the shared machine down.

The Spark rows set `ingest.engine=spark` and `features.engine=spark` (Spark's master from params.yaml: `local[*]`, or
$SPARK_MASTER_URL; with `--spark-cluster`, a standalone cluster started for the run as `make production` starts it: a
master and two workers of one core and 3 GB each on 127.0.0.1, whose executors' memory the driver's process tree
does not include); `materialize` and `training_set` read the same tables whichever engine wrote them (Feast's duckdb
store), so they run once per scale, with the polars rows. Baselines, run beside the stage they compare with: at 1x,
the training set in one retrieval of every entity row (`training_set.chunk_rows` above the row count); at 3x, the
features in one part (`features.part_rows` above the row count).

Results merge into reports/bench/cost_growth.json by (scale, engine) and step: a run of some scales (`--scales`),
engines or steps (`--steps`, e.g. `simulate` after a change to the simulator) keeps the others' figures.

Run: uv run python -m bench.bench_cost_growth [--scales 1,3,10] [--engines polars,spark] [--spark-cluster] [--steps ...]
     [--runs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import psutil
from tests.project_copy import committed_project, project_env, set_params

from bench.timing import RESULTS, save

PROFILES = {1: "default", 3: "medium", 10: "large"}
ENGINE_PARAMS = {"polars": [], "spark": ["ingest.engine=spark", "features.engine=spark"]}
STEPS = {"polars": ("ingest", "features", "materialize", "training_set"), "spark": ("ingest", "features")}
ONE_SHOT = 10**12  # chunk_rows / part_rows above any row count: one retrieval, one part
SAMPLE_S = 0.25


@dataclass(frozen=True)
class StepRun:
    seconds: float
    peak_rss_mb: float | None  # the largest process (`/usr/bin/time -v`); None when it was killed
    peak_tree_rss_mb: float  # the process tree's sum, sampled
    cpu_s: float | None  # user + system seconds of the process tree (the machine may be shared: wall time varies)
    failed: str | None  # why it did not finish


def run_step(project: Path, pipeline: str, params: list[str], limit_mb: float, log: Path) -> StepRun:
    """`kedro run --pipelines <pipeline>` in `project` under `/usr/bin/time -v`, killed past `limit_mb`."""
    command = ["/usr/bin/time", "-v", "kedro", "run", "--pipelines", pipeline]
    if params:
        command += ["--params", ",".join(params)]
    with log.open("w") as out:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=project, env=project_env(project), stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
        peak, killed = _watch(process, limit_mb)
        seconds = time.perf_counter() - start
    text = log.read_text(errors="replace")
    if killed:
        return StepRun(round(seconds, 2), None, round(peak), None, f"killed at {peak:.0f} MB (limit {limit_mb:.0f} MB)")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", text)
    cpu = [float(s) for s in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", text)]
    failed = None if process.returncode == 0 else f"exit {process.returncode}: {_last_error(text, peak)}"
    rss_mb = round(int(rss.group(1)) / 1024) if rss else None
    return StepRun(round(seconds, 2), rss_mb, round(peak), round(sum(cpu), 1) if cpu else None, failed)


def _watch(process: subprocess.Popen, limit_mb: float) -> tuple[float, bool]:
    """Sample the process tree's resident memory until it ends; kill its session past `limit_mb`. Returns the peak
    (MB) and whether it was killed."""
    peak, killed = 0.0, False
    root = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            rss = sum(p.memory_info().rss for p in tree if p.is_running()) / 2**20
        except psutil.Error:
            rss = 0.0
        peak = max(peak, rss)
        if rss > limit_mb:
            os.killpg(process.pid, 9)
            killed = True
            process.wait()
            break
        time.sleep(SAMPLE_S)
    return peak, killed


def _last_error(text: str, peak_mb: float) -> str:
    if "terminated by signal 9" in text:  # SIGKILL from outside: on a machine out of memory, the kernel's OOM killer
        return f"killed by signal 9 (out of memory?) at {peak_mb:.0f} MB"
    memory = [line.strip() for line in text.splitlines() if "OutOfMemoryError" in line or "MemoryError" in line]
    causes = [line.strip() for line in text.splitlines() if line.strip().startswith("Caused by:")]  # Java's first
    errors = [line.strip() for line in text.splitlines() if "Error" in line or "error" in line]
    line = memory[-1] if memory else causes[0] if causes else errors[-1] if errors else "see the step's log"
    return line[:300]


def timed(work: list[StepRun]) -> dict:
    """Median seconds over the runs, the largest peaks, every run's seconds; the first failure if any run failed."""
    failed = next((r.failed for r in work if r.failed), None)
    peaks = [r.peak_rss_mb for r in work if r.peak_rss_mb is not None]
    return {
        "seconds": round(statistics.median(r.seconds for r in work), 2),
        "runs_s": [r.seconds for r in work],
        "peak_rss_mb": max(peaks) if peaks else None,
        "peak_tree_rss_mb": max(r.peak_tree_rss_mb for r in work),
        "cpu_s": statistics.median(r.cpu_s for r in work) if all(r.cpu_s is not None for r in work) else None,
        "failed": failed,
    }


def repeat(runs: int, project: Path, pipeline: str, params: list[str], limit_mb: float, logs: Path) -> dict:
    work = []
    for i in range(runs):
        log = logs / f"{project.parent.name}-{pipeline}-{'-'.join(params)}-{i}.log"
        work.append(run_step(project, pipeline, params, limit_mb, log))
        print(f"  {pipeline} {' '.join(params)}: {work[-1]}", flush=True)
        if work[-1].failed:
            break
    return timed(work)


def measure_scale(scale: int, engines: list[str], runs: int, limit_mb: float, logs: Path,
                  only: set[str] | None = None) -> list[dict]:  # fmt: skip
    """Every step at one scale (or the steps in `only`; the simulation runs anyway: the others need its data), in a
    scratch project deleted afterwards."""
    scratch = Path(tempfile.mkdtemp(prefix=f"cost_growth_{scale}x_"))
    try:
        project = committed_project(scratch / "project")
        set_params(project, simulate={"profile": PROFILES[scale]})
        simulate = repeat(runs, project, "simulate", [], limit_mb, logs)
        transactions = pl.scan_parquet(project / "data/01_raw/simulated_transactions.parquet").select(pl.len())
        rows = transactions.collect().item() if not simulate["failed"] else None
        entries = []
        for engine in engines:
            steps = {"simulate": simulate} if engine == "polars" and (only is None or "simulate" in only) else {}
            for step in STEPS[engine]:
                if only is not None and step not in only:
                    continue
                steps[step] = repeat(runs, project, step, ENGINE_PARAMS[engine], limit_mb, logs)
                if steps[step]["failed"]:
                    break
            if engine == "polars" and scale == 1 and not steps.get("training_set", {"failed": True})["failed"]:
                one_shot = [f"training_set.chunk_rows={ONE_SHOT}"]
                steps["training_set_one_shot"] = repeat(runs, project, "training_set", one_shot, limit_mb, logs)
            if engine == "polars" and scale == 3 and not steps.get("features", {"failed": True})["failed"]:
                one_part = [f"features.part_rows={ONE_SHOT}"]
                steps["features_one_part"] = repeat(runs, project, "features", one_part, limit_mb, logs)
            entries.append({"scale": scale, "profile": PROFILES[scale], "engine": engine, "rows": rows,
                            "runs": runs, "steps": steps})  # fmt: skip
        return entries
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextmanager
def spark_master(cluster: bool, logs: Path) -> Iterator[str]:
    """The Spark master the Spark rows use: with `cluster`, a standalone cluster on a free port, started here
    (`production.services`) and stopped afterwards; else $SPARK_MASTER_URL or params.yaml's `local[*]`."""
    if not cluster:
        yield os.environ.get("SPARK_MASTER_URL", "local[*]")
        return
    from fraud_detection.production.services import SPARK_WORKERS, Services, free_port

    url = f"spark://127.0.0.1:{free_port()}"
    before = os.environ.get("SPARK_MASTER_URL")
    with Services(logs / "spark-cluster", {"SPARK_MASTER_URL": url}) as services:
        services.logs.mkdir(parents=True, exist_ok=True)
        services.spark()
        os.environ["SPARK_MASTER_URL"] = url  # the steps' environment (project_env copies it)
        try:
            yield f"{url}: a standalone master and {SPARK_WORKERS} workers (1 core, 3 GB each)"
        finally:
            if before is None:
                del os.environ["SPARK_MASTER_URL"]
            else:
                os.environ["SPARK_MASTER_URL"] = before


def merged(previous: list[dict], new: list[dict]) -> list[dict]:
    """The new entries, each with the previous entry's steps that it did not measure again; the other entries."""
    before = {(e["scale"], e["engine"]): e for e in previous}
    for entry in new:
        entry["steps"] = before.pop((entry["scale"], entry["engine"]), {}).get("steps", {}) | entry["steps"]
    return sorted([*before.values(), *new], key=lambda e: (e["scale"], e["engine"]))


def table(results: list[dict]) -> str:
    lines = ["scale | engine | step | rows | seconds | CPU s | peak RSS MB | process tree MB | failed"]
    for entry in results:
        for step, figures in entry["steps"].items():
            cells = [f"{entry['scale']}x", entry["engine"], step, entry["rows"], figures["seconds"], figures["cpu_s"],
                     figures["peak_rss_mb"], figures["peak_tree_rss_mb"], figures["failed"] or ""]  # fmt: skip
            lines.append(" | ".join(str(cell) for cell in cells))
    return "\n".join(lines)


def main(scales: list[int], engines: list[str], runs: int, limit_gb: float, logs: Path,
         only: set[str] | None = None, cluster: bool = False) -> None:  # fmt: skip
    logs.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "cost_growth.json"
    previous = json.loads(path.read_text())["results"] if path.exists() else []
    with spark_master(cluster and "spark" in engines, logs) as master:
        new = [entry for scale in scales for entry in measure_scale(scale, engines, runs, limit_gb * 1024, logs, only)]
    for entry in new:
        if entry["engine"] == "spark":
            entry["spark_master"] = master
    results = merged(previous, new)
    save("cost_growth", {
        "runs": runs,
        "runs_note": "each step's seconds are the median of `runs` runs (one at 10x: a 10x step takes minutes)",
        "memory_limit_gb": limit_gb,
        "spark_master_note": "each Spark entry's `spark_master` (entries without one ran on local[*])",
        "peak_rss_note": "peak_rss_mb: the largest process (/usr/bin/time -v); peak_tree_rss_mb: the process "
                         "tree's sum, sampled every 0.25 s (Spark's JVM beside its driver)",
        "results": results,
    })  # fmt: skip
    print(table(results))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1,3,10", help="comma-separated, of 1, 3, 10")
    parser.add_argument("--engines", default="polars,spark", help="comma-separated, of polars, spark")
    parser.add_argument("--steps", default=None, help="comma-separated steps to measure again (default: all)")
    parser.add_argument("--spark-cluster", action="store_true", help="the Spark rows on a standalone cluster")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--memory-limit-gb", type=float, default=16.0)
    parser.add_argument("--logs", type=Path, default=Path(tempfile.gettempdir()) / "cost_growth_logs")
    args = parser.parse_args()
    scales = [int(s) for s in args.scales.split(",")]
    engines = args.engines.split(",")
    for scale in scales:
        if scale not in PROFILES:
            parser.error(f"--scales: {scale} is not one of {sorted(PROFILES)}")
    for engine in engines:
        if engine not in ENGINE_PARAMS:
            parser.error(f"--engines: {engine} is not one of {sorted(ENGINE_PARAMS)}")
    only = set(args.steps.split(",")) if args.steps else None
    known = {"simulate", *(step for steps in STEPS.values() for step in steps)}
    if only is not None and not only <= known:
        parser.error(f"--steps: {sorted(only - known)} not among {sorted(known)}")
    main(scales, engines, args.runs, args.memory_limit_gb, args.logs, only, args.spark_cluster)
