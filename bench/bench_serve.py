"""The real-time service under load (run `make repro` first; needs `wrk`: `apt-get install wrk`).

`bentoml serve` of the project's service runs on a copy of the project's registry and online store
(FRAUD_DETECTION_HOME points at it, so the project's own store is not touched), with a shadow (the champion
scored again) so that `/predict` does everything a request does: features from the online store, both models,
logging, the write-behind of the customer's state. The load is the last simulated day's transactions, re-dated
to the next day (the day the online store is materialized for), sent by wrk from the same machine. Side by side,
in the same run:
- the floor: a trivial FastAPI + uvicorn endpoint (one worker) that parses the same JSON and answers, one
  transaction (`/predict`) or a list (`/predict_batch`, a trivial answer per transaction);
- a trivial BentoML endpoint with BentoML's default settings (what the request path started from);
- `/predict` at 1 connection and 16 connections; `/predict_batch` with 1,000 transactions a request, 4 connections,
  each request on a new connection (below).
Figures are medians over `--runs` runs of `--seconds` each; wrk's latency percentiles (corrected for coordinated
omission, as wrk does). Every run also records the CPU seconds each server worker used (from /proc), so a run
whose load sat on one worker shows it. Results: reports/bench/serve.json.

Why new connections for the batch load: BentoML's workers share one listening socket, and a worker's event loop
accepts every pending connection at once, so a handful of keep-alive connections opened together often all land on
one worker (measured: 4 of 4, the other worker idle). The `batch_keepalive` figure shows that case.

Run: uv run python -m bench.bench_serve [--runs 3] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import polars as pl
import requests
import yaml

from bench.timing import save

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
_SERVERS: dict[int, int] = {}  # port -> the server's process (its group leader)
HOME_FILES = ["pyproject.toml", ".telemetry", "conf", "data/05_feature_store", "data/mlflow"]

TRIVIAL_FASTAPI = textwrap.dedent("""
    from fastapi import FastAPI
    from pydantic import AwareDatetime, BaseModel

    app = FastAPI()

    class Transaction(BaseModel):
        transaction_id: int
        tx_datetime: AwareDatetime
        customer_id: int
        terminal_id: int
        tx_amount: float

    class Batch(BaseModel):
        transactions: list[Transaction]

    @app.post("/predict")
    async def predict(transaction: Transaction) -> dict:
        return {"transaction_id": transaction.transaction_id, "fraud_probability": 0.01, "decision": "approve"}

    @app.post("/predict_batch")
    async def predict_batch(batch: Batch) -> list[dict]:
        return [{"transaction_id": t.transaction_id, "fraud_probability": 0.01, "decision": "approve"}
                for t in batch.transactions]
""")
TRIVIAL_BENTOML = textwrap.dedent("""
    import bentoml
    from pydantic import AwareDatetime, BaseModel

    class Transaction(BaseModel):
        transaction_id: int
        tx_datetime: AwareDatetime
        customer_id: int
        terminal_id: int
        tx_amount: float

    class Answer(BaseModel):
        transaction_id: int
        fraud_probability: float
        decision: str

    @bentoml.service(name="trivial", workers=1, http={"host": "127.0.0.1"})
    class Trivial:
        @bentoml.api(route="/predict", input_spec=Transaction, output_spec=Answer)
        async def predict(self, **fields) -> Answer:
            return Answer(transaction_id=fields["transaction_id"], fraud_probability=0.01, decision="approve")
""")
CYCLE_LUA = textwrap.dedent("""
    local bodies = {}
    for line in io.lines("%s") do bodies[#bodies + 1] = line end
    local i = 0
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    request = function()
      i = i %% #bodies + 1
      return wrk.format(nil, nil, nil, bodies[i])
    end
""")
CLOSE_LUA = 'wrk.headers["Connection"] = "close"\n'  # the server closes after answering: a new connection each request


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed; expected it on PATH (Debian/Ubuntu: apt-get install wrk)")
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as folder:
        work = Path(folder)
        singles, batches = _workload(work)
        figures = {"workload": f"{sum(1 for _ in singles.open())} transactions of the last day, re-dated +1 day"}
        with _process(_uvicorn(work), 8101) as url:
            figures["fastapi_trivial"] = _latency_runs(url + "/predict", singles, args)
            figures["fastapi_trivial_batch"] = _batch_runs(url + "/predict_batch", batches, args)
        with _process(_bentoml_trivial(work), 8102) as url:
            figures["bentoml_trivial_defaults"] = _latency_runs(url + "/predict", singles, args)
        home = _home(work)
        with _process(_fraud_service(work, home), 8103) as url:
            figures["predict"] = _latency_runs(url + "/predict", singles, args)
            figures["predict_batch"] = _batch_runs(url + "/predict_batch", batches, args)
            figures["predict_batch_keepalive"] = _batch_runs(url + "/predict_batch", batches, args, close=False)
        figures["ratios"] = _ratios(figures)
    save("serve", figures)


# -- the load
def _workload(work: Path) -> tuple[Path, Path]:
    days = sorted((ROOT / "data/02_intermediate/transactions").glob("date=*"))
    if not days:
        sys.exit("no transactions: run `make repro` first")
    day = pl.read_parquet(days[-1]).sort("tx_datetime")
    rows = [
        {"transaction_id": r["transaction_id"] + 100_000_000, "tx_datetime": (r["tx_datetime"] + timedelta(days=1))
         .isoformat(), "customer_id": r["customer_id"], "terminal_id": r["terminal_id"], "tx_amount": r["tx_amount"]}
        for r in day.iter_rows(named=True)
    ]  # fmt: skip
    singles = work / "singles.jsonl"
    singles.write_text("".join(json.dumps(r) + "\n" for r in rows))
    batches = work / "batches.jsonl"
    batches.write_text("".join(json.dumps({"transactions": rows[i : i + 1000]}) + "\n"
                               for i in range(0, len(rows) - 999, 1000)))  # fmt: skip
    return singles, batches


def _latency_runs(url: str, bodies: Path, args: argparse.Namespace) -> dict:
    _wrk(url, bodies, 1, 3)  # warm-up
    figures = {}
    for connections in (1, 16):
        runs = [_wrk(url, bodies, connections, args.seconds) for _ in range(args.runs)]
        figures[f"c{connections}"] = _medians(runs)
    return figures


def _batch_runs(url: str, bodies: Path, args: argparse.Namespace, close: bool = True) -> dict:
    """1,000 transactions a request, 4 connections; `close`: a new connection for each request."""
    _wrk(url, bodies, 4, 3, close)
    runs = [_wrk(url, bodies, 4, args.seconds, close) for _ in range(args.runs)]
    medians = _medians(runs)
    return {"transactions_per_request": 1000, "connections": 4, "new_connection_per_request": close, **medians,
            "transactions_per_s": round(medians["requests_per_s"] * 1000)}  # fmt: skip


def _wrk(url: str, bodies: Path, connections: int, seconds: int, close: bool = False) -> dict:
    script = bodies.with_suffix(".close.lua" if close else ".lua")
    script.write_text(CYCLE_LUA % bodies + (CLOSE_LUA if close else ""))
    workers = _workers(url)
    before = _cpu_seconds(workers)
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s",
                          str(script), url], capture_output=True, text=True, check=True).stdout  # fmt: skip
    after = _cpu_seconds(workers)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"{url} answered {errors.group(1)} requests with errors under load:\n{out}")
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),
        "p99_ms": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),
        "worker_cpu_s": [round(after.get(pid, 0.0) - used, 2) for pid, used in before.items()],
    }


def _workers(url: str) -> list[int]:
    """The processes that serve `url`: BentoML's worker processes under the server's process, or the server."""
    leader = _SERVERS[urlsplit(url).port]
    parent, command = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            command[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            continue

    def under_leader(pid: int) -> bool:
        while pid > 1:
            pid = parent.get(pid, 0)
            if pid == leader:
                return True
        return False

    workers = [pid for pid in parent if b"_bentoml_impl.worker" in command[pid] and under_leader(pid)]
    return sorted(workers) or [leader]


def _cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds each process has used so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    used = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return used


def _medians(runs: list[dict]) -> dict:
    numbers = [key for key in runs[0] if key != "worker_cpu_s"]
    return {key: round(statistics.median(r[key] for r in runs), 3) for key in numbers} | {"runs": runs}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1000.0}[unit]


def _ratios(figures: dict) -> dict:
    floor, predict = figures["fastapi_trivial"], figures["predict"]
    ratios = {
        f"predict_vs_fastapi_{c}": {
            "throughput": round(predict[c]["requests_per_s"] / floor[c]["requests_per_s"], 3),
            "p50": round(predict[c]["p50_ms"] / floor[c]["p50_ms"], 2),
            "p99": round(predict[c]["p99_ms"] / floor[c]["p99_ms"], 2),
        }
        for c in ("c1", "c16")
    }
    batch, batch_floor = figures["predict_batch"], figures["fastapi_trivial_batch"]
    ratios["predict_batch_vs_fastapi"] = {
        "throughput": round(batch["requests_per_s"] / batch_floor["requests_per_s"], 3)
    }
    return ratios


# -- the servers
def _uvicorn(work: Path) -> list[str]:
    (work / "trivial_fastapi.py").write_text(TRIVIAL_FASTAPI)
    return [str(BIN / "uvicorn"), "trivial_fastapi:app", "--host", "127.0.0.1", "--port", "8101", "--log-level",
            "warning", "--no-access-log", "--app-dir", str(work)]  # fmt: skip


def _bentoml_trivial(work: Path) -> list[str]:
    (work / "trivial_bentoml.py").write_text(TRIVIAL_BENTOML)
    return [str(BIN / "bentoml"), "serve", "trivial_bentoml:Trivial", "--port", "8102", "--working-dir", str(work)]


def _home(work: Path) -> Path:
    """A copy of what serving reads (registry, online store, conf), with the champion as the shadow too."""
    home = work / "home"
    for name in HOME_FILES:
        source, target = ROOT / name, home / name
        if not source.exists():
            sys.exit(f"{source} is missing: run `make repro` first")
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("local"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    (home / "conf/local").mkdir(exist_ok=True)
    from fraud_detection.runtime.params import checked_params
    from fraud_detection.runtime.project import config_loader

    params = config_loader(ROOT)["parameters"]  # params.yaml as Kedro reads it (plain values)
    params = {**params, "serve": {**params["serve"], "shadow": "champion"}}
    checked_params(params)  # the service checks it too: a bad copy fails here, not in its workers
    (home / "params.yaml").write_text(yaml.safe_dump(params))
    return home


def _fraud_service(work: Path, home: Path) -> list[str]:
    os.environ["FRAUD_DETECTION_HOME"] = str(home)
    return [str(BIN / "bentoml"), "serve", "fraud_detection.serving.service:FraudService", "--port", "8103"]


@contextmanager
def _process(command: list[str], port: int) -> Iterator[str]:
    env = {**os.environ, "BENTOML_HOME": os.environ.get("BENCH_BENTOML_HOME", str(Path(tempfile.gettempdir()) /
                                                                                  "bench-bentoml")),
           "BENTOML_DO_NOT_TRACK": "True"}  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    _SERVERS[port] = process.pid
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, process)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def _wait(url: str, process: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the server for {url} exited with {process.returncode}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", int(url.rsplit(":", 1)[1]))) == 0:
                try:
                    if requests.get(f"{url}/readyz", timeout=2).status_code in (200, 404):
                        time.sleep(3)  # every worker up
                        return
                except requests.RequestException:
                    pass
        time.sleep(0.5)
    sys.exit(f"{url} was not ready within {timeout_s} s")


if __name__ == "__main__":
    main()
