"""`dvc repro` end to end on a copy of the project (small profile): the stages run, the register stage registers
and gates, the registry CLI works on the result, and an ingest over the quarantine ceiling fails the stage while the
previous outputs and dvc.lock stay as they were."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import requests
import yaml

from tests.conftest import PROJECT_ROOT
from tests.ingestion.messy_source import COLUMN_MAP, messy_source

pytestmark = pytest.mark.slow
PROJECT_FILES = ["pyproject.toml", "params.yaml", "dvc.yaml", ".telemetry", ".dvcignore", "conf", "src"]
# The small model (2 epochs) on the small set (11 % fraud) is not what the gate is tuned for: this tests the mechanics
LENIENT_GATE = {
    "min_auc_roc": 0.6,
    "min_average_precision": 0.05,
    "min_high_score_share": 0.0,
    "max_high_score_share": 0.5,
    "max_latency_ms": 1000,
}  # the small set is 11 % fraud


def _dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        check=False,
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _params() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())


def _registry_cli(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fraud_detection.cli", "registry", *args],
        check=False, cwd=project, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _set_params(project: Path, **changes: dict) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    for key, values in changes.items():
        params[key].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    for name in PROJECT_FILES:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "local"))
        else:
            shutil.copy2(source, root / name)
    (root / "conf" / "local").mkdir(exist_ok=True)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    assert _dvc(root, "init", "-q").returncode == 0
    _set_params(
        root,
        simulate={"profile": "small"},
        train={"window_days": 21, "hidden_sizes": [16], "max_epochs": 2},
        evaluate={"first_test_start": "2018-05-06", "folds": 2},  # the small set's 60 days from 2018-04-01
        register={"gate": {**_params()["register"]["gate"], **LENIENT_GATE}},
    )
    return root


def _snapshot(project: Path) -> dict[str, bytes]:
    paths = [*(project / "data").rglob("*"), project / "reports" / "ingest.json", project / "dvc.lock"]
    return {str(p.relative_to(project)): p.read_bytes() for p in sorted(paths) if p.is_file()}


def test_repro_runs_every_stage(project: Path) -> None:
    run = _dvc(project, "repro")
    assert run.returncode == 0, run.stdout + run.stderr
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    assert set(lock) == set(yaml.safe_load((project / "dvc.yaml").read_text())["stages"])
    summary = yaml.safe_load((project / "reports" / "ingest.json").read_text())
    assert summary["rows_read"] == summary["rows_accepted"] > 0
    assert _dvc(project, "status").stdout.strip().endswith("up to date.")
    metrics = _dvc(project, "metrics", "show", "--json")
    assert metrics.returncode == 0 and "card_precision_at_100" in metrics.stdout
    plots = _dvc(project, "plots", "show", "--json")
    assert plots.returncode == 0 and "roc_candidate.csv" in plots.stdout, plots.stderr


def test_register_is_idempotent_gates_new_candidates_and_the_cli_operates_the_registry(project: Path) -> None:
    first = json.loads((project / "reports" / "promotion.json").read_text())
    assert first["version"] == 1 and first["decision"]["alias"] == "champion" and first["aliases"] == {"champion": 1}
    assert _dvc(project, "repro", "-f", "-s", "register").returncode == 0
    again = json.loads((project / "reports" / "promotion.json").read_text())
    assert again["version"] == 1 and again["events"] == [], "the same candidate: no new version, no alias move"

    status = json.loads(_registry_cli(project, "status", "--json").stdout)
    assert [v["version"] for v in status["versions"]] == [1]
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    [training_set] = lock["training_set"]["outs"]
    store = f"sqlite:///{project / 'data/mlflow/mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=store, registry_uri=store)  # not the process's global registry
    tags = client.get_model_version("fraud-detector", "1").tags
    assert tags["training_set_md5"] == training_set["md5"], "the version names the DVC hash of its training set"
    lineage = {"git_commit", "params_hash", "feature_service", "feature_service_version", "feature_schema",
               "library_versions", "training_seconds", "model_bytes", "backtest.average_precision"}  # fmt: skip
    assert lineage <= set(tags)

    _set_params(project, train={"seed": 1})  # a new candidate: train, evaluate and register run again
    assert _dvc(project, "repro").returncode == 0
    second = json.loads((project / "reports" / "promotion.json").read_text())
    assert second["version"] == 2 and second["champion_before"] == 1
    assert second["decision"]["champion"] is not None, "gated against the champion on the same window"

    champion = second["aliases"]["champion"]  # 2 if the gate promoted it, else still 1
    other = 3 - champion
    forced = _registry_cli(project, "promote", str(other), "--force", "--reason", "test", "--actor", "tester")
    assert forced.returncode == 0 and f"version {other} is champion (forced" in forced.stdout, forced.stderr
    rolled = _registry_cli(project, "rollback", "--reason", "regression", "--actor", "oncall")
    assert rolled.returncode == 0 and f"from version {other} to version {champion}" in rolled.stdout, rolled.stderr
    history = json.loads(_registry_cli(project, "history", "--json").stdout)
    assert [(e["action"], e["version"]) for e in history][-2:] == [("force-promote", other), ("rollback", champion)]
    assert history[-1]["actor"] == "oncall" and history[-1]["reason"] == "regression"
    unknown = _registry_cli(project, "promote", "7")
    assert unknown.returncode == 2 and "has no version 7" in unknown.stderr
    assert json.loads(_registry_cli(project, "history", "--json").stdout) == history, "bad input changes nothing"
    gated = _registry_cli(project, "promote", "2")
    assert gated.returncode == 0 and "gate window" in gated.stdout, gated.stderr


def test_the_service_serves_the_champion_over_http_and_refuses_bad_input_by_name(project: Path) -> None:
    """`bentoml serve` from the project root after `dvc repro`: the champion through BentoML's model store, features
    from the Feast online store, a shadow, hot reload after a promotion, the admin token; on a clean stop every
    prediction is in the log."""
    _set_params(project, serve={"shadow": "champion", "reload_interval_s": 1, "max_batch": 5})
    port = _free_port()
    env = {**os.environ, "BENTOML_HOME": str(project / ".bentoml"), "BENTOML_DO_NOT_TRACK": "True",
           "FRAUD_DETECTION_ADMIN_TOKEN": "s3cret"}  # fmt: skip
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "bentoml"), "serve", "fraud_detection.serving.service:FraudService",
         "--port", str(port)],
        cwd=project, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    url, served = f"http://127.0.0.1:{port}", 0
    try:
        _wait_ready(url, server)
        champion = json.loads(_registry_cli(project, "status", "--json").stdout)["aliases"]["champion"]
        good = {"transaction_id": 1, "tx_datetime": "2018-05-30T12:00:00Z", "customer_id": 5, "terminal_id": 7,
                "tx_amount": 42.0}  # fmt: skip
        answer = requests.post(f"{url}/predict", json=good, timeout=10)
        assert answer.status_code == 200, answer.text
        served += 1
        body = answer.json()
        assert body["model_version"] == str(champion) and body["variant"] == "champion" and not body["degraded"]
        assert 0 <= body["fraud_probability"] <= 1 and body["decision"] in {"approve", "review", "decline"}
        _check_bad_input_is_refused_by_name(url, good)

        batch = [{**good, "transaction_id": i} for i in range(3)]
        answers = requests.post(f"{url}/predict_batch", json={"transactions": batch}, timeout=10)
        assert answers.status_code == 200 and [a["transaction_id"] for a in answers.json()] == [0, 1, 2]
        served += 3
        too_many = requests.post(f"{url}/predict_batch", json={"transactions": batch * 2}, timeout=10)
        assert too_many.status_code == 400 and "at most 5" in too_many.text

        assert requests.post(f"{url}/admin/reload", json={}, timeout=10).status_code == 401
        wrong = {"authorization": "Bearer guess"}
        assert requests.post(f"{url}/admin/reload", json={}, headers=wrong, timeout=10).status_code == 401
        token = {"authorization": "Bearer s3cret"}
        reloaded = requests.post(f"{url}/admin/reload", json={}, headers=token, timeout=10)
        assert reloaded.status_code == 200 and reloaded.json()["champion"] == str(champion), reloaded.text

        other = 3 - champion
        assert _registry_cli(project, "promote", str(other), "--force").returncode == 0
        deadline, version = time.monotonic() + 30, None
        while time.monotonic() < deadline and version != str(other):  # hot reload: no restart, no failed request
            answer = requests.post(f"{url}/predict", json=good, timeout=10)
            assert answer.status_code == 200, answer.text
            served += 1
            version = answer.json()["model_version"]
            time.sleep(0.1)
        assert version == str(other), "the new champion serves within the reload interval"
        metrics = requests.get(f"{url}/metrics", timeout=10).text
        assert "fraud_detection_requests" in metrics and "bentoml_service_request_duration_seconds" in metrics
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    logged = [json.loads(line) for path in (project / "data/08_serving/predictions").glob("*.jsonl")
              for line in path.read_text().splitlines()]  # fmt: skip
    roles = [r["role"] for r in logged]
    assert roles.count("served") == served and roles.count("shadow") == served, "all flushed on a clean stop"


def _check_bad_input_is_refused_by_name(url: str, good: dict) -> None:
    for change, field in (({"tx_amount": -1}, "tx_amount"), ({"customer_id": "x"}, "customer_id"),
                          ({"tx_datetime": "2018-05-30T12:00:00"}, "tx_datetime")):  # fmt: skip
        refused = requests.post(f"{url}/predict", json={**good, **change}, timeout=10)
        assert refused.status_code == 400 and field in refused.text, (change, refused.text)
    missing = requests.post(f"{url}/predict", json={k: v for k, v in good.items() if k != "tx_amount"}, timeout=10)
    assert missing.status_code == 400 and "tx_amount" in missing.text
    garbage = requests.post(f"{url}/predict", data=b"{not json", timeout=10,
                            headers={"content-type": "application/json"})  # fmt: skip
    assert garbage.status_code == 400


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, server: subprocess.Popen, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert server.poll() is None, f"bentoml serve exited with {server.returncode}"
        try:
            if requests.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
    pytest.fail(f"the service was not ready within {timeout_s} s")


def test_failed_ingest_keeps_previous_outputs_and_lock(project: Path) -> None:
    before = _snapshot(project)
    raw, _ = messy_source()
    raw.write_csv(project / "bad.csv")
    _set_params(project, ingest={"source": str(project / "bad.csv"), "column_map": COLUMN_MAP})
    run = _dvc(project, "repro", "ingest")
    assert run.returncode != 0
    message = " ".join((run.stdout + run.stderr).split())  # undo the terminal's line wrapping
    assert "failed validation, above ingest.max_quarantine_fraction = 5.00%" in message
    assert _snapshot(project) == before
