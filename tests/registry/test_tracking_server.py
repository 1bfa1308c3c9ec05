"""The production profile's registry: an `mlflow server` on PostgreSQL (127.0.0.1:5432) with a local artifact store.
Candidates are logged, registered, gated, promoted and rolled back through it; concurrent promotions are serialised
by the PostgreSQL advisory lock; the server and every helper process it spawned are stopped at the end."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import mlflow
import polars as pl
import pytest

from fraud_detection.features.definitions import FEATURES
from fraud_detection.pipelines.train.nodes import train_candidate
from fraud_detection.registry.candidate import CandidateDataset
from fraud_detection.registry.gate import CHAMPION
from fraud_detection.registry.loading import load_model
from fraud_detection.registry.promotion import force_promote, promote_gated
from fraud_detection.registry.registry import GATE, ROLLBACK, RegistryAddress
from tests.conftest import changed
from tests.registry.conftest import LENIENT, Store
from tests.registry.test_registry import _promote_many

pytestmark = pytest.mark.postgres
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
BACKEND = "postgresql+psycopg2://postgres@127.0.0.1:5432"  # SQLAlchemy's default driver is psycopg 3
STARTUP_S = 240


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _admin(sql: str) -> None:
    import psycopg2

    connection = psycopg2.connect(f"{POSTGRES}/postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(sql)
    connection.close()


def _wait_for_health(uri: str, process: subprocess.Popen, log: Path) -> None:
    """The server answers /health (tens of seconds: it migrates a fresh database first) or the test fails with its
    log."""
    import requests

    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mlflow server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(f"{uri}/health", timeout=2).ok:
                return
        except requests.RequestException:
            time.sleep(0.5)
    pytest.fail(f"mlflow server did not answer within {STARTUP_S} s:\n{log.read_text()[-3000:]}")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[tuple[str, str]]:
    """(tracking URI, database URL) of a fresh server on a fresh database, stopped with its whole process group."""
    root = tmp_path_factory.mktemp("mlflow-server")
    database = f"mlflow_test_{uuid.uuid4().hex[:10]}"
    _admin(f"CREATE DATABASE {database}")
    port = _free_port()
    log = (root / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"{BACKEND}/{database}",
         "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    uri = f"http://127.0.0.1:{port}"
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()  # the registry sets them for pyfunc loads
    try:
        _wait_for_health(uri, process, root / "server.log")
        yield uri, f"{POSTGRES}/{database}"
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        deadline = time.monotonic() + 30
        while _group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        alive = _group_alive(process.pid)
        log.close()
        _admin(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        assert not alive, "a helper process of the server outlived it"


def test_register_promote_and_roll_back_through_the_tracking_server(
    server: tuple[str, str], store: Store, small_training_set: pl.DataFrame, small_train_params, tmp_path: Path
) -> None:
    uri, database = server
    runs = []
    for seed in (0, 1, 2):
        params = changed(small_train_params, seed=seed, max_epochs=1)
        candidate = train_candidate(small_training_set, params, 7, "v1")
        CandidateDataset(str(tmp_path / f"candidate{seed}"), uri, "production-test").save(candidate)
        runs.append(candidate.run)
    assert all(run["tracking_uri"] == uri for run in runs)

    registry = RegistryAddress(uri, database).open("fraud-detector")
    versions = [int(registry.register(run, {"git_commit": "abc"}).version) for run in runs]
    assert versions == [1, 2, 3] and int(registry.register(runs[0], {}).version) == 1, "idempotent"

    decision, _, _ = promote_gated(registry, 1, store.window, "w", LENIENT, "stage")
    assert decision.promoted and registry.alias_version(CHAMPION) == 1
    force_promote(registry, 2, "tester", "next")
    assert registry.rollback("oncall", "regression").version == 1
    assert [(e.action, e.version) for e in registry.history()] == [(GATE, 1), ("force-promote", 2), (ROLLBACK, 1)]
    scores = load_model(registry, "champion").predict_frame(store.window.select(FEATURES).to_pandas())
    assert len(scores) == store.window.height, "the champion loads through the server's artifact proxy"

    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(2)
        with context.Pool(2) as pool:
            pool.starmap(_promote_many, [(uri, database, "fraud-detector", plan, barrier)
                                         for plan in ([2, 3, 2, 3], [1, 3, 1, 3])])  # fmt: skip
    history = registry.history()
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    for before, after in itertools.pairwise(history):
        if after.alias == CHAMPION:
            assert after.previous == before.version
    assert registry.alias_version(CHAMPION) == history[-1].version
