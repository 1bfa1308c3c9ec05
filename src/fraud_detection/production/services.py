"""The production profile's services, started when they are not already running, and stopped afterwards only if
started here: Redis, PostgreSQL, the MLflow tracking server (PostgreSQL backend) and a Spark standalone cluster (a
master and two workers, from pyspark's own distribution). Each endpoint comes from the same environment variable
that the production catalog reads (`endpoints`), with the local default.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

DEFAULTS = {
    "FRAUD_DETECTION_REDIS_URL": "redis://127.0.0.1:6379/0",
    "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
    "FRAUD_DETECTION_POSTGRES_DSN": "postgresql://postgres@127.0.0.1:5432/mlflow",
    "SPARK_MASTER_URL": "spark://127.0.0.1:7077",
}
SPARK_WORKERS = 2


class ServiceError(RuntimeError):
    """A service could not be started or reached."""


def endpoints(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Each production endpoint: the environment's value, else the local default."""
    environ = os.environ if environ is None else environ
    return {name: environ.get(name) or default for name, default in DEFAULTS.items()}


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def of(cls, url: str, default_port: int) -> Address:
        parts = urlsplit(url)
        if not parts.hostname:
            raise ServiceError(f"endpoint {url!r} names no host; expected scheme://host:port")
        return cls(parts.hostname, parts.port or default_port)

    def listening(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        except OSError:
            return False

    @property
    def local(self) -> bool:
        return self.host in ("127.0.0.1", "localhost", "::1")


def wait_for(what: str, ready: Callable[[], bool], timeout_s: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.5)
    tail = log.read_text()[-2000:] if log and log.exists() else ""
    said = f"; its log ({log}) ends with:\n{tail}" if tail else ""
    raise ServiceError(f"{what} is not ready after {timeout_s:.0f} s{said}")


class Services:
    """Start what is not running (`start_all`); `close` stops, in reverse order, only what was started here."""

    def __init__(self, root: Path, environ: dict[str, str] | None = None, say: Callable[[str], None] = print) -> None:
        self.root, self.urls, self.say = root, endpoints(environ), say
        self.logs = root / "data" / "production" / "logs"
        self._stack = ExitStack()
        self.started: list[str] = []

    def __enter__(self) -> Services:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()

    def start_all(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.redis()
        self.postgres()
        self.mlflow()
        self.spark()

    # --- each service ---------------------------------------------------------------------------------------------

    def redis(self) -> None:
        address = Address.of(self.urls["FRAUD_DETECTION_REDIS_URL"], 6379)
        if self._running("Redis", address):
            return
        self._spawn("redis", ["redis-server", "--bind", address.host, "--port", str(address.port), "--save", "",
                              "--appendonly", "no"])  # fmt: skip
        wait_for("Redis", address.listening, 30, self.logs / "redis.log")

    def postgres(self) -> None:
        address = Address.of(self.urls["FRAUD_DETECTION_POSTGRES_DSN"], 5432)
        if not self._running("PostgreSQL", address):
            clusters = sorted(Path("/etc/postgresql").glob("*/main"))
            if not clusters or not shutil.which("pg_ctlcluster"):
                raise ServiceError(f"PostgreSQL is not running at {address.host}:{address.port} and no local cluster "
                                   "to start was found (/etc/postgresql/<version>/main); start it, or set "
                                   "FRAUD_DETECTION_POSTGRES_DSN")  # fmt: skip
            version = clusters[-1].parent.name
            self._command("PostgreSQL", ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                          ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "stop"])  # fmt: skip
            wait_for("PostgreSQL", address.listening, 60)
        self._create_database(self.urls["FRAUD_DETECTION_POSTGRES_DSN"])

    def mlflow(self) -> None:
        uri = self.urls["MLFLOW_TRACKING_URI"]
        address = Address.of(uri, 5000)
        if self._running("the MLflow server", address):
            return
        backend = self.urls["FRAUD_DETECTION_POSTGRES_DSN"].replace("postgresql://", "postgresql+psycopg2://", 1)
        artifacts = self.root / "data" / "mlflow-server" / "artifacts"
        command = [sys.executable, "-m", "fraud_detection.runtime.telemetry", "mlflow", "server", "--host",
                   address.host, "--port", str(address.port), "--workers", "1", "--backend-store-uri", backend,
                   "--artifacts-destination", str(artifacts)]  # fmt: skip
        self._spawn("mlflow", command)
        wait_for("the MLflow server", lambda: http_ok(f"{uri.rstrip('/')}/health"), 180, self.logs / "mlflow.log")

    def spark(self) -> None:
        address = Address.of(self.urls["SPARK_MASTER_URL"], 7077)
        if self._running("the Spark master", address):
            return
        spark_class = spark_home() / "bin" / "spark-class"
        ui = free_port()
        self._spawn("spark-master", [str(spark_class), "org.apache.spark.deploy.master.Master", "--host",
                                     address.host, "--port", str(address.port), "--webui-port", str(ui)])  # fmt: skip
        wait_for("the Spark master", address.listening, 120, self.logs / "spark-master.log")
        master = f"spark://{address.host}:{address.port}"
        for n in range(SPARK_WORKERS):
            work = self.root / "data" / "production" / "spark" / f"worker-{n}"
            work.mkdir(parents=True, exist_ok=True)
            self._spawn(f"spark-worker-{n}", [str(spark_class), "org.apache.spark.deploy.worker.Worker", "--host",
                                              address.host, "--cores", "1", "--memory", "3g", "--work-dir", str(work),
                                              "--webui-port", str(free_port()), master])  # fmt: skip
        wait_for(f"{SPARK_WORKERS} Spark workers", lambda: _alive_workers(address.host, ui) >= SPARK_WORKERS, 120,
                 self.logs / "spark-worker-1.log")  # fmt: skip

    # --- helpers --------------------------------------------------------------------------------------------------

    def _running(self, what: str, address: Address) -> bool:
        if address.listening():
            self.say(f"  {what}: running at {address.host}:{address.port}")
            return True
        if not address.local:
            raise ServiceError(f"{what} at {address.host}:{address.port} cannot be reached, and only a service on "
                               "this machine can be started here; check its endpoint variable")  # fmt: skip
        self.say(f"  {what}: starting at {address.host}:{address.port}")
        return False

    def _spawn(self, name: str, command: list[str]) -> None:
        log = (self.logs / f"{name}.log").open("w")
        env = {**os.environ, "SPARK_HOME": str(spark_home()), "SPARK_LOG_DIR": str(self.logs)}
        process = subprocess.Popen(command, cwd=self.root, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)  # fmt: skip
        self.started.append(name)
        self._stack.callback(terminate, process, log)

    def _command(self, name: str, start: list[str], stop: list[str]) -> None:
        done = subprocess.run(start, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceError(f"{name} did not start ({' '.join(start)}): {done.stderr.strip()}")
        self.started.append(name)
        self._stack.callback(subprocess.run, stop, capture_output=True, check=False)

    def _create_database(self, dsn: str) -> None:
        import psycopg2
        from psycopg2 import sql

        name = urlsplit(dsn).path.strip("/")
        if not name:
            raise ServiceError(f"FRAUD_DETECTION_POSTGRES_DSN {dsn!r} names no database; expected .../<database>")
        admin = dsn[: dsn.rindex("/")] + "/postgres"
        connection = psycopg2.connect(admin)
        connection.autocommit = True  # CREATE DATABASE runs outside a transaction
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                self.say(f"  PostgreSQL: created database {name}")
        connection.close()


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _alive_workers(host: str, ui_port: int) -> int:
    import json

    try:
        with urllib.request.urlopen(f"http://{host}:{ui_port}/json/", timeout=2) as response:
            return int(json.load(response).get("aliveworkers", 0))
    except (OSError, ValueError):
        return 0


def terminate(process: subprocess.Popen, log) -> None:
    """Stop a process started in its own session (its whole group), then close its log."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, 15)
            process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, 9)
    log.close()
