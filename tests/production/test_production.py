"""`make production` (`fraud-detection production run`) on the small profile: the whole system on a Spark
standalone cluster, Redis, PostgreSQL, the MLflow tracking server and a served Bento, in a copy of the committed
project, each endpoint its own (a free port, a Redis database, a PostgreSQL database) so that nothing of the
machine's own services is touched."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from pathlib import Path

import polars as pl
import psycopg2
import pytest
import redis

from tests.conftest import PROJECT_ROOT
from tests.http_helpers import free_port
from tests.project_copy import committed_project, project_env, use_small_profile

pytestmark = [pytest.mark.slow, pytest.mark.spark, pytest.mark.redis, pytest.mark.postgres, pytest.mark.timeout(2400)]
REDIS_DB = 11  # the test's own


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_make_production_runs_the_whole_system_on_real_engines(tmp_path: Path) -> None:
    project = use_small_profile(committed_project(tmp_path / "project"))
    database = f"fd_production_{uuid.uuid4().hex[:8]}"
    mlflow_port, spark_port = free_port(), free_port()
    env = project_env(
        project,
        FRAUD_DETECTION_REDIS_URL=f"redis://127.0.0.1:6379/{REDIS_DB}",
        MLFLOW_TRACKING_URI=f"http://127.0.0.1:{mlflow_port}",
        FRAUD_DETECTION_POSTGRES_DSN=f"postgresql://postgres@127.0.0.1:5432/{database}",
        SPARK_MASTER_URL=f"spark://127.0.0.1:{spark_port}",
        BENTOML_HOME=str(tmp_path / "bentoml"),
    )
    store = redis.Redis(db=REDIS_DB)
    store.flushdb()
    try:
        simulate = subprocess.run(["kedro", "run", "--pipelines", "simulate"], cwd=project, env=env,
                                  capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
        assert simulate.returncode == 0, simulate.stdout[-3000:] + simulate.stderr[-3000:]
        # under `make test-services` this make is a sub-make: no "Entering directory" lines
        dry_run = subprocess.run(["make", "--no-print-directory", "-n", "production"], cwd=PROJECT_ROOT,
                                 capture_output=True, text=True, check=True).stdout.splitlines()  # fmt: skip
        assert dry_run[-1].endswith("fraud-detection production run"), "`make production` is this command"
        run = subprocess.run(["fraud-detection", "production", "run"], cwd=project, env=env, capture_output=True,
                             text=True, timeout=2100, check=False)  # fmt: skip
        assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-5000:]
        out, logs = run.stdout, project / "data" / "production" / "logs"

        # it started what was not running, and stopped it again
        assert f"the Spark master: starting at 127.0.0.1:{spark_port}" in out
        assert f"the MLflow server: starting at 127.0.0.1:{mlflow_port}" in out
        assert not _listening(spark_port) and not _listening(mlflow_port), "what it started is stopped"
        assert f"PostgreSQL: created database {database}" in out

        # ingest and features ran on the cluster, training as two DDP nodes, the registry on the server
        master = (logs / "spark-master.log").read_text()
        assert master.count("Registering worker") == 2, "a master and two workers"
        assert master.count("Registered app fraud_detection") == 2, "ingest's and features' Spark sessions"
        assert "train: done" in out and "2 nodes" in out
        node_logs = [(logs / f"train-node{rank}.log").read_text() for rank in (0, 1)]
        assert "GLOBAL_RANK: 1, MEMBER: 2/2" in node_logs[1]
        assert "rank 1: the candidate is written by rank 0 only" in node_logs[1]
        with psycopg2.connect(f"postgresql://postgres@127.0.0.1:5432/{database}") as connection:
            cursor = connection.cursor()
            cursor.execute("SELECT alias FROM registered_model_aliases WHERE name = 'fraud-detector'")
            assert ("champion",) in cursor.fetchall(), "the champion lives in the server's PostgreSQL backend"

        # the Bento (not the source tree) served one simulated day; its predictions and labels went to Redis
        assert "serving the Bento fraud-detection-service:" in out
        streams = {key.decode() for key in store.keys("fraud_detection:*")}
        assert {"fraud_detection:predictions", "fraud_detection:labels"} <= streams
        feedback = json.loads((project / "reports" / "feedback.json").read_text())
        sent = store.xlen("fraud_detection:predictions")
        assert feedback["predictions"] == sent > 100
        labelled = pl.read_parquet(project / "data" / "09_feedback" / "labelled_predictions.parquet")
        assert labelled.height == sent
        assert (project / "reports" / "monitoring.json").is_file()
        assert "results:" in out and "drift report" in out
    finally:
        store.flushdb()
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-c", f"DROP DATABASE IF EXISTS {database}"],
                       capture_output=True, check=False)  # fmt: skip
