"""Telemetry is off in every process the project starts: the switches runtime/telemetry.py sets, MLflow reading its
own as off, `make mlflow-server` starting `mlflow server` through the module, and (slow) MLflow making no telemetry
client nor installation id in a process started that way, where it does in a bare one."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from fraud_detection.runtime.telemetry import TELEMETRY_OFF, USAGE, disable_telemetry
from tests.conftest import PROJECT_ROOT

WRAPPER = [sys.executable, "-m", "fraud_detection.runtime.telemetry"]
PRINT_ENVIRONMENT = "import json, os; print(json.dumps(dict(os.environ)))"
# What MLflow did at import: its telemetry client, and whether it wrote an installation id (under XDG_CONFIG_HOME).
MLFLOW_PROBE = """
import json, os, pathlib
import mlflow.telemetry
made = mlflow.telemetry.get_telemetry_client() is not None
from fraud_detection.runtime.telemetry import disable_telemetry
disable_telemetry()
print(json.dumps({
    "client_at_import": made,
    "installation_id": (pathlib.Path(os.environ["XDG_CONFIG_HOME"]) / "mlflow" / "telemetry.json").exists(),
    "client_after_disable": mlflow.telemetry.get_telemetry_client() is not None,
}))
"""


def _without_switches() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in TELEMETRY_OFF}


def _bare_environment(home: Path) -> dict[str, str]:
    """Only what a shell must have: no switch, no CI or pytest variable (MLflow turns telemetry off for those)."""
    return {"PATH": os.environ["PATH"], "HOME": str(home), "XDG_CONFIG_HOME": str(home / "config"),
            "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv"))}  # fmt: skip


def _mlflow_server_line() -> list[str]:
    """The words of `make mlflow-server`'s recipe line that starts `mlflow server`."""
    dry_run = subprocess.run(["make", "-n", "mlflow-server"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             check=True).stdout.replace("\\\n", " ")  # fmt: skip
    lines = [shlex.split(line) for line in dry_run.splitlines() if "mlflow server" in line]
    assert len(lines) == 1, dry_run
    return lines[0]


def test_disable_telemetry_sets_every_switch_a_users_own_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TELEMETRY_OFF:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FEAST_USAGE", "false")  # a user's spelling
    disable_telemetry()
    assert {name: os.environ[name] for name in TELEMETRY_OFF} == {**TELEMETRY_OFF, "FEAST_USAGE": "false"}


def test_mlflow_reads_the_projects_switches_as_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlflow.environment_variables import MLFLOW_DISABLE_TELEMETRY

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", TELEMETRY_OFF["MLFLOW_DISABLE_TELEMETRY"])
    assert MLFLOW_DISABLE_TELEMETRY.get() is True
    assert TELEMETRY_OFF["DO_NOT_TRACK"] == "true"  # MLflow honours DO_NOT_TRACK only spelled so (telemetry/utils.py)


def test_the_test_sessions_processes_inherit_the_switches() -> None:
    """tests/conftest.py switches them on for this process; the `mlflow server`, `bentoml serve` and `kedro run`
    subprocesses of the tests inherit its environment."""
    from mlflow.environment_variables import MLFLOW_DISABLE_TELEMETRY

    assert MLFLOW_DISABLE_TELEMETRY.get() is True
    assert all(name in os.environ for name in TELEMETRY_OFF)


def test_make_mlflow_server_starts_mlflow_through_the_telemetry_module() -> None:
    words = _mlflow_server_line()
    start = words.index("mlflow")
    assert words[start + 1] == "server"
    assert words[start - 3 : start] == ["python", "-m", "fraud_detection.runtime.telemetry"], words


def test_the_module_runs_a_command_with_the_switches_set() -> None:
    run = subprocess.run([*WRAPPER, sys.executable, "-c", PRINT_ENVIRONMENT], env=_without_switches(),
                         capture_output=True, text=True, check=True)  # fmt: skip
    environment = json.loads(run.stdout)
    assert {name: environment.get(name) for name in TELEMETRY_OFF} == TELEMETRY_OFF
    bare = subprocess.run([sys.executable, "-c", PRINT_ENVIRONMENT], env=_without_switches(), capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert not set(TELEMETRY_OFF) & set(json.loads(bare.stdout))  # the switches came from the module


def test_the_module_passes_the_exit_status_on_and_refuses_a_missing_command() -> None:
    assert subprocess.run([*WRAPPER, "sh", "-c", "exit 3"], check=False).returncode == 3
    nothing = subprocess.run(WRAPPER, check=False, capture_output=True, text=True)
    assert nothing.returncode != 0 and USAGE in nothing.stderr
    missing = subprocess.run([*WRAPPER, "no-such-command-here"], check=False, capture_output=True, text=True)
    assert missing.returncode != 0 and "cannot run 'no-such-command-here'" in missing.stderr


@pytest.mark.slow
def test_mlflow_started_like_make_mlflow_server_makes_no_telemetry_client(tmp_path: Path) -> None:
    words = _mlflow_server_line()
    launcher = words[: words.index("mlflow")]  # `.tools/bin/uv run ... python -m fraud_detection.runtime.telemetry`
    bare = subprocess.run([sys.executable, "-c", MLFLOW_PROBE], env=_bare_environment(tmp_path / "bare"),
                          capture_output=True, text=True, check=True)  # fmt: skip
    # the probe can tell: a bare process makes a client and writes an installation id; disable_telemetry drops it
    assert json.loads(bare.stdout.splitlines()[-1]) == {"client_at_import": True, "installation_id": True,
                                                        "client_after_disable": False}  # fmt: skip
    started = subprocess.run([*launcher, "python", "-c", MLFLOW_PROBE], cwd=PROJECT_ROOT, check=False,
                             env=_bare_environment(tmp_path / "make"), capture_output=True, text=True)  # fmt: skip
    assert started.returncode == 0, started.stderr[-2000:]
    assert json.loads(started.stdout.splitlines()[-1]) == {"client_at_import": False, "installation_id": False,
                                                           "client_after_disable": False}  # fmt: skip
