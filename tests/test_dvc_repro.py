"""`dvc repro` end to end on a copy of the project (small profile): the stages run, and an ingest over the
quarantine ceiling fails the stage while the previous outputs and dvc.lock stay as they were."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT
from tests.ingestion.messy_source import COLUMN_MAP, messy_source

pytestmark = pytest.mark.slow
PROJECT_FILES = ["pyproject.toml", "params.yaml", "dvc.yaml", ".telemetry", "conf", "src"]


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
