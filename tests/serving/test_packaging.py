"""Packaging: bentofile.yaml pins the serving dependencies as uv.lock does, and `fraud-detection serve build` makes
a Bento that carries the champion and serves it when the registry cannot be reached."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import requests
import yaml
from tests.conftest import PROJECT_ROOT
from tests.http_helpers import free_port, wait_ready

HEAVY = ("pyspark", "dvc", "torch", "pytorch-lightning", "evidently", "papermill", "scikit-learn", "kedro-datasets")


def test_the_bentofile_pins_what_uv_lock_pins_and_leaves_out_the_training_stack() -> None:
    locked = {p["name"]: p["version"] for p in tomllib.loads((PROJECT_ROOT / "uv.lock").read_text())["package"]}
    packages = yaml.safe_load((PROJECT_ROOT / "bentofile.yaml").read_text())["python"]["packages"]
    for requirement in packages:
        name, version = requirement.split("==")
        name = name.split("[")[0]
        assert locked.get(name) == version, f"bentofile.yaml pins {requirement}; uv.lock has {name}=={locked.get(name)}"
    assert not [p for p in packages if p.split("[")[0].split("==")[0] in HEAVY]


@pytest.mark.slow
def test_a_built_bento_carries_the_champion_and_serves_it_without_the_registry(serving_project, tmp_path) -> None:
    root = serving_project.root
    shutil.copy2(PROJECT_ROOT / "bentofile.yaml", root / "bentofile.yaml")
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "True"}
    cli = [str(Path(sys.executable).parent / "fraud-detection"), "serve", "build"]
    built = subprocess.run(cli, cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    tag = built.stdout.split("built ", 1)[1].split()[0]
    [bento] = (tmp_path / "bentoml" / "bentos").glob(f"{tag.replace(':', '/')}")
    info = yaml.safe_load((bento / "bento.yaml").read_text())
    [model] = info["services"][0]["models"]
    assert model["tag"].startswith(f"fraud-detector:v{serving_project.champion}-")
    requirements = (bento / "env/python/requirements.txt").read_text()
    assert "feast[duckdb,redis]==" in requirements and not any(f"\n{h}==" in requirements for h in HEAVY)

    unreachable = root / "conf" / "no_registry"
    unreachable.mkdir(exist_ok=True)
    (unreachable / "catalog.yml").write_text(yaml.safe_dump({"model_registry": {
        "type": "fraud_detection.registry.dataset.ModelRegistryDataset", "tracking_uri": "http://127.0.0.1:9",
        "lock": "data/mlflow/registry.lock"}}))  # fmt: skip
    port = free_port()
    serving = {**env, "FRAUD_DETECTION_HOME": str(root), "FRAUD_DETECTION_ENV": "no_registry"}
    log = (tmp_path / "bento.log").open("w")
    server = subprocess.Popen([str(Path(sys.executable).parent / "bentoml"), "serve", tag, "--port", str(port)],
                              cwd=tmp_path, env=serving, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, server, tmp_path / "bento.log")
        body = {"transaction_id": 1, "tx_datetime": "2018-05-15T12:00:00Z", "customer_id": 125, "terminal_id": 474,
                "tx_amount": 42.0}  # fmt: skip
        answer = requests.post(f"{url}/predict", json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        assert json.loads(answer.text)["model_version"] == str(serving_project.champion), "the model it carries"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
