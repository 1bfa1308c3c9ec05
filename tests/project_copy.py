"""A project for the slow tests to run end to end: the committed tree of this repository (`git archive HEAD`), never
the working tree, so that no uncommitted edit, data/, .venv or conf/local gets in. `committed_project` extracts it,
makes it a git repository of its own (one commit: the lineage tags name a real commit) and a DVC project;
`use_small_profile` sizes it for tests; `project_env` is the environment to run its commands in (its own src/ first
on the path, ahead of the working tree that the virtualenv's editable install points at)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import yaml

from tests.conftest import PROJECT_ROOT

# The small model (2 epochs) on the small set (11 % fraud) is not what the gate is tuned for: the tests check the
# mechanics
LENIENT_GATE = {
    "min_auc_roc": 0.6,
    "min_average_precision": 0.05,
    "min_high_score_share": 0.0,
    "max_high_score_share": 0.5,
    "max_latency_ms": 1000,
}  # the small set is 11 % fraud
# git, for the copy's own repository: no user configuration needed, no hooks or signing from the user's
_GIT = ["git", "-c", "user.name=tests", "-c", "user.email=tests@localhost", "-c", "commit.gpgsign=false",
        "-c", "core.hooksPath=/dev/null"]  # fmt: skip


def committed_project(destination: Path) -> Path:
    """HEAD of the repository at PROJECT_ROOT, extracted into `destination` (created; it must be empty), committed
    there as a git repository of its own, with DVC initialised (the committed .dvc/ if HEAD has one). Returns
    `destination`."""
    destination.mkdir(parents=True, exist_ok=True)
    if any(destination.iterdir()):
        raise ValueError(f"{destination} is not empty; expected a new folder for the project")
    env = _git_env()
    head = _git_out(["rev-parse", "HEAD"], PROJECT_ROOT, env).strip()
    archive = subprocess.run([*_GIT, "archive", "--format=tar", head], cwd=PROJECT_ROOT, env=env, check=True,
                             capture_output=True, timeout=120).stdout  # fmt: skip
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")
    (destination / "conf" / "local").mkdir(exist_ok=True)  # Kedro's local environment: present, empty
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", f"git archive {head} of {PROJECT_ROOT}"]):
        _git_out(args, destination, env)
    if not (destination / ".dvc").is_dir():
        dvc = subprocess.run([sys.executable, "-m", "dvc", "init", "-q"], cwd=destination, env=project_env(destination),
                             check=False, capture_output=True, text=True, timeout=120)  # fmt: skip
        if dvc.returncode != 0:
            raise RuntimeError(f"dvc init failed in {destination}: {dvc.stdout}{dvc.stderr}")
    return destination


def project_env(project: Path, **extra: str) -> dict[str, str]:
    """The environment for a command run in `project`: the virtualenv's scripts (dvc, kedro, bentoml) on PATH and
    the project's own src/ first on PYTHONPATH, so that its code, not the working tree's, is what runs; `extra` last
    (e.g. PATH=/usr/bin:/bin)."""
    python_path = os.pathsep.join(p for p in (str(project / "src"), os.environ.get("PYTHONPATH", "")) if p)
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    return {**os.environ, "PATH": path, "PYTHONPATH": python_path, **extra}


def set_params(project: Path, **changes: dict) -> None:
    """params.yaml of `project`, each section named updated with the values given (one level deep)."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    for key, values in changes.items():
        params[key].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params))


def use_small_profile(project: Path) -> Path:
    """The test-sized run: the small simulated set (60 days from 2018-04-01), a small network for 2 epochs, a 2-fold
    backtest inside those days and a gate lenient enough for such a model (the project's own gate, floors relaxed).
    Returns `project`."""
    gate = yaml.safe_load((project / "params.yaml").read_text())["register"]["gate"]
    set_params(
        project,
        simulate={"profile": "small"},
        train={"window_days": 21, "hidden_sizes": [16], "max_epochs": 2},
        evaluate={"first_test_start": "2018-05-06", "folds": 2},  # the small set's 60 days from 2018-04-01
        register={"gate": {**gate, **LENIENT_GATE}},
    )
    return project


def _git_env() -> dict[str, str]:
    """os.environ without what would point git at another repository (as set inside a git hook, say)."""
    hidden = {"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR"}
    return {k: v for k, v in os.environ.items() if k not in hidden}


def _git_out(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    run = subprocess.run([*_GIT, *args], cwd=cwd, env=env, check=False, capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd}: {run.stdout}{run.stderr}")
    return run.stdout
