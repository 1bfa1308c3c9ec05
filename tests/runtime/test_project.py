"""The project runs from any folder: a clone under a dot-folder (e.g. ~/.cache/work/fraud) loads every params.yaml
key, while config files hidden inside the project (an editor's `.ipynb_checkpoints/`) stay ignored. This is also the
contract test of the one Kedro internal the project overrides (`OmegaConfigLoader._is_hidden`, kedro 1.7)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fraud_detection.runtime.params import Params
from fraud_detection.runtime.project import ProjectConfigLoader, config_loader
from tests.project_copy import committed_project, project_env

LOAD_CONTEXT = """
import json
from pathlib import Path
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

root = Path.cwd()
bootstrap_project(root)
with KedroSession.create(project_path=root) as session:
    context = session.load_context()
    catalog = context.catalog
    print(json.dumps({"keys": sorted(context.params), "simulate": type(catalog.load("params:simulate")).__name__,
                      "delay": catalog.load("params:features.label_delay_days")}))
"""


@pytest.fixture(scope="module")
def hidden_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return committed_project(tmp_path_factory.mktemp("home") / ".cache" / "work" / "fraud")


def test_a_clone_under_a_dot_folder_loads_every_params_key(hidden_clone: Path) -> None:
    run = subprocess.run([sys.executable, "-c", LOAD_CONTEXT], cwd=hidden_clone, env=project_env(hidden_clone),
                         capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    loaded = json.loads(run.stdout.strip().splitlines()[-1])
    assert loaded["keys"] == sorted(Params.model_fields)
    assert loaded["simulate"] == "SimulateParams" and isinstance(loaded["delay"], int), "nodes get typed values"


def test_the_loader_reads_params_yaml_from_a_hidden_path(hidden_clone: Path) -> None:
    assert set(config_loader(hidden_clone)["parameters"]) == set(Params.model_fields)


def test_config_hidden_inside_the_project_is_still_ignored(hidden_clone: Path) -> None:
    checkpoints = hidden_clone / "conf" / "base" / ".ipynb_checkpoints"
    checkpoints.mkdir()
    (checkpoints / "catalog-checkpoint.yml").write_text("transactions: {type: MemoryDataset}\n")
    loader = ProjectConfigLoader(str(hidden_clone / "conf"), env="local", base_env="base", default_run_env="local")
    assert loader._is_hidden(str(checkpoints / "catalog-checkpoint.yml"))
    assert not loader._is_hidden(str(hidden_clone / "params.yaml"))
    assert config_loader(hidden_clone)["catalog"]["transactions"]["type"] != "MemoryDataset"
