"""The whole system on the production profile, step by step, each as its user would run it (`kedro run --env
production`, `fraud-detection ...`, `bentoml serve`), on the services `services.py` keeps up:

1. ingest and features on the Spark cluster (`SPARK_MASTER_URL`);
2. materialize (Feast: the Redis online store) and the training set through Feast;
3. training with Lightning DDP as two nodes (one process each, gloo over 127.0.0.1), then evaluate;
4. register on the MLflow server;
5. the Bento built with the champion baked in (`fraud-detection serve build`), and served: the Bento, not the source;
6. one simulated day driven through it (`fraud-detection traffic run --url`), then feedback and monitor.
Each step's output goes to data/production/logs/<step>.log; a failed step stops the run and says where to look.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fraud_detection.production.services import (
    ServiceError,
    Services,
    endpoints,
    free_port,
    http_ok,
    terminate,
    wait_for,
)

ENV = "production"
TRAIN_NODES = 2
DDP_TRAINER = (f"train.trainer.num_nodes={TRAIN_NODES},train.trainer.devices=1,train.trainer.strategy=ddp,"
               "train.trainer.accelerator=cpu")  # fmt: skip


class StepFailed(RuntimeError):
    pass


@dataclass
class Production:
    root: Path
    days: int = 1
    say: Callable[[str], None] = print
    env: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.logs = self.root / "data" / "production" / "logs"
        bin_dir = str(Path(sys.executable).parent)
        self.env = {**os.environ, **endpoints(), "KEDRO_ENV": ENV, "FRAUD_DETECTION_ENV": ENV,
                    "FRAUD_DETECTION_HOME": str(self.root), "PYSPARK_PYTHON": sys.executable,
                    "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", **self.env}  # fmt: skip

    def run(self) -> dict[str, str]:
        """Every step; returns where each result is."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.say("services:")
        with Services(self.root, self.env, self.say) as services:
            services.start_all()
            self.kedro("ingest", "--params", "ingest.engine=spark")
            self.kedro("features", "--params", "features.engine=spark")
            self.kedro("materialize")
            self.kedro("training_set")
            self.train_on_two_nodes()
            self.kedro("evaluate")
            self.kedro("register")
            tag = self.build_bento()
            with self.serving(tag) as url:
                self.step("traffic", ["fraud-detection", "traffic", "run", "--days", str(self.days), "--url", url,
                                      "--env", ENV])  # fmt: skip
            self.kedro("feedback")
            self.kedro("monitor")
            self.say(f"stopping what was started here: {', '.join(reversed(services.started)) or 'nothing'}")
        return self.results(tag)

    # --- steps ----------------------------------------------------------------------------------------------------

    def kedro(self, pipeline: str, *extra: str) -> None:
        self.step(pipeline, ["kedro", "run", "--env", ENV, "--pipelines", pipeline, *extra])

    def step(self, name: str, command: list[str], env: dict[str, str] | None = None) -> str:
        started = time.perf_counter()
        log = self.logs / f"{name}.log"
        with log.open("w") as out:
            done = subprocess.run(command, cwd=self.root, env=env or self.env, stdout=out, stderr=subprocess.STDOUT,
                                  check=False)  # fmt: skip
        self.timings[name] = time.perf_counter() - started
        if done.returncode != 0:
            tail = "\n".join(log.read_text().splitlines()[-25:])
            raise StepFailed(f"step {name} failed (exit {done.returncode}): {' '.join(command)}\n{tail}\n(the whole "
                             f"output: {log})")  # fmt: skip
        self.say(f"  {name}: done in {self.timings[name]:.0f} s")
        return log.read_text()

    def train_on_two_nodes(self) -> None:
        """`kedro run --pipelines train` once per node (NODE_RANK 0 and 1, one process each): Lightning's DDP joins
        them over gloo at MASTER_ADDR:MASTER_PORT; rank 0 writes the candidate."""
        started, port = time.perf_counter(), free_port()
        command = ["kedro", "run", "--env", ENV, "--pipelines", "train", "--params", DDP_TRAINER]
        nodes = []
        for rank in range(TRAIN_NODES):
            env = {**self.env, "NODE_RANK": str(rank), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
            log = (self.logs / f"train-node{rank}.log").open("w")
            nodes.append((subprocess.Popen(command, cwd=self.root, env=env, stdout=log, stderr=subprocess.STDOUT),
                          log))  # fmt: skip
        failed = []
        for rank, (process, log) in enumerate(nodes):
            if process.wait() != 0:
                failed.append(rank)
            log.close()
        self.timings["train"] = time.perf_counter() - started
        if failed:
            tail = "\n".join((self.logs / f"train-node{failed[0]}.log").read_text().splitlines()[-25:])
            raise StepFailed(f"training node(s) {failed} failed:\n{tail}\n(logs: {self.logs}/train-node*.log)")
        self.say(f"  train: done in {self.timings['train']:.0f} s ({TRAIN_NODES} nodes, DDP over gloo)")

    def build_bento(self) -> str:
        output = self.step("bento", ["fraud-detection", "serve", "build", "--env", ENV])
        return output.split("built ", 1)[1].split()[0]

    @contextmanager
    def serving(self, tag: str) -> Iterator[str]:
        """`bentoml serve <tag>` (the built Bento) on a free port, until the block ends; yields its URL."""
        port = free_port()
        log_path = self.logs / "bento-serve.log"
        log = log_path.open("w")
        server = subprocess.Popen(["bentoml", "serve", tag, "--port", str(port), "--host", "127.0.0.1"],
                                  cwd=self.root / "data" / "production", env=self.env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(f"the Bento {tag}", lambda: http_ok(f"{url}/readyz") or server.poll() is not None, 180, log_path)
            if server.poll() is not None:
                raise ServiceError(f"bentoml serve {tag} exited; see {log_path}")
            self.say(f"  serving the Bento {tag} at {url}")
            yield url
        finally:
            terminate(server, log)

    def results(self, tag: str) -> dict[str, str]:
        reports = self.root / "reports"
        drift = sorted((reports / "drift").glob("*.html"))
        return {
            "bento": tag,
            "registry": f"{self.env['MLFLOW_TRACKING_URI']} (model fraud-detector)",
            "online store and streams": f"{self.env['FRAUD_DETECTION_REDIS_URL']} (fraud_detection:predictions, "
            "fraud_detection:labels)",
            "backtest": str(reports / "metrics.json"),
            "promotion": str(reports / "promotion.json"),
            "feedback": str(reports / "feedback.json"),
            "monitoring": str(reports / "monitoring.json"),
            "drift report": str(drift[-1]) if drift else "(none)",
            "logs": str(self.logs),
        }


def summary(results: dict[str, str], timings: dict[str, float]) -> str:
    width = max(map(len, results))
    lines = [f"  {name.ljust(width)}  {where}" for name, where in results.items()]
    total = sum(timings.values())
    steps = json.dumps({name: round(seconds) for name, seconds in timings.items()})
    return "\n".join(["results:", *lines, f"steps took {total:.0f} s: {steps}"])
