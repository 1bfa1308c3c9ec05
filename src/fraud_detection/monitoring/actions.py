"""What the monitor stage's decision does when acted on (`fraud-detection monitor act`, or `monitor run` with
`monitor.act: true`). The stage only recommends: a DVC stage that moved registry aliases or started training would
make `dvc repro` depend on when it ran.

- `retrain`: train again on the newest window (`dvc repro --force --single-item train`: the train stage takes the
  latest labelled days), then `dvc repro`, which evaluates the candidate, puts it through the promotion gate,
  re-scores the batch with whatever is champion then, and monitors again;
- `rollback`: the registry's rollback (the champion goes back to the previous champion; the service follows within
  `serve.reload_interval_s`), then the batch re-scored with it and monitoring run again. Refused if the champion
  has moved since the decision was made: the decision was about another model;
- `none`, `investigate`: nothing to run (`investigate` is for a person: reports/drift/ shows what moved).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fraud_detection.registry.registry import ModelRegistry, RegistryError, default_actor

log = logging.getLogger(__name__)
Run = Callable[[Sequence[str]], int]  # a command line -> its exit status

RETRAIN = (("dvc", "repro", "--force", "--single-item", "train"), ("dvc", "repro"))
AFTER_ROLLBACK = (("dvc", "repro", "--force", "--single-item", "batch_predict"),
                  ("dvc", "repro", "--force", "--single-item", "monitor"), ("dvc", "repro"))  # fmt: skip
MONITOR = ("dvc", "repro", "monitor")
MONITOR_AGAIN = ("dvc", "repro", "--force", "--single-item", "monitor")
DOWNSTREAM = ("dvc", "repro")  # what reads the monitor stage's outputs (the monitoring review notebook)


class ActionFailed(RuntimeError):
    """A command of the action exited non-zero (what ran before it stays done)."""


def run_command(command: Sequence[str]) -> int:
    """Run `dvc ...` with this environment's DVC, and its stages' `kedro` on the PATH (an unactivated venv)."""
    log.info("running %s", " ".join(command))
    tools = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"}
    line = [sys.executable, "-m", "dvc", *command[1:]] if command[0] == "dvc" else list(command)
    return subprocess.run(line, check=False, env=env).returncode


def act(decision: dict[str, Any], registry: ModelRegistry, run: Run = run_command) -> dict[str, Any]:
    """Carry out `decision` (reports/monitoring.json). Returns what was done."""
    action = decision["action"]
    if action == "rollback":
        champion = registry.alias_version("champion")
        decided_on = decision["champion"]["version"]
        if str(champion) != str(decided_on):
            raise RegistryError(f"the decision is about champion version {decided_on} but the champion is now "
                                f"{champion}; expected the same: run the monitor stage again first")  # fmt: skip
        event = registry.rollback(default_actor(), "monitor: " + "; ".join(decision["reasons"]))
        _run_all(AFTER_ROLLBACK, run)
        return {"action": action, "champion": event.version, "was": event.previous, "ran": _lines(AFTER_ROLLBACK)}
    if action == "retrain":
        _run_all(RETRAIN, run)
        return {"action": action, "champion": registry.alias_version("champion"), "ran": _lines(RETRAIN)}
    return {"action": action, "ran": []}


def monitor_again(run: Run = run_command, stage_ran: Callable[[], bool] = lambda: False) -> None:
    """`dvc repro monitor` (the upstream stages too, where their inputs changed), the monitor stage forced if it
    did not run (the prediction log is not a DVC dependency: the service appends to it all the time), then
    `dvc repro` for what reads its outputs (the monitoring review notebook)."""
    _run_all((MONITOR,), run)
    if not stage_ran():
        _run_all((MONITOR_AGAIN,), run)
    _run_all((DOWNSTREAM,), run)


def _run_all(commands: Sequence[Sequence[str]], run: Run) -> None:
    for command in commands:
        status = run(command)
        if status != 0:
            raise ActionFailed(f"`{' '.join(command)}` exited with status {status}; expected 0")


def _lines(commands: Sequence[Sequence[str]]) -> list[str]:
    return [" ".join(c) for c in commands]
