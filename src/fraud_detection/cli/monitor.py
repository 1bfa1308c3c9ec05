"""`fraud-detection monitor act|run`: act on the monitor stage's decision (retrain, rollback)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from fraud_detection.cli import common


def add_commands(groups: Any) -> None:
    monitor = common.Group(groups, "monitor", help="act on the monitor stage's decision (retrain, rollback)",
                           example="fraud-detection monitor act --env production")  # fmt: skip
    act = monitor.command("act", help="do what reports/monitoring.json recommends",
                          example="fraud-detection monitor act")  # fmt: skip
    act.set_defaults(command=_act)
    run = monitor.command("run", help="the monitor stage (forced), then act if monitor.act is true",
                          example="fraud-detection monitor run")  # fmt: skip
    run.set_defaults(command=_run)


def _act(args: argparse.Namespace) -> None:
    from fraud_detection.monitoring.actions import act

    registry = common.opened_registry(args)
    decision = common.opened_context(args).catalog.load("monitoring_decision")
    print(f"monitor: {decision['action']} ({'; '.join(decision['reasons'])})")
    done = act(decision, registry)
    if decision["action"] == "rollback":
        print(f"champion rolled back from version {done['was']} to version {done['champion']}")
    for line in done["ran"]:
        print(f"ran: {line}")


def _run(args: argparse.Namespace) -> None:
    from fraud_detection.monitoring.actions import monitor_again
    from fraud_detection.runtime.project import project_root

    report = project_root() / "reports" / "monitoring.json"
    before = report.stat().st_mtime_ns if report.exists() else None
    monitor_again(stage_ran=lambda: report.exists() and report.stat().st_mtime_ns != before)
    if common.opened_context(args).params.monitor.act:
        _act(args)
    else:
        decision = json.loads(report.read_text())
        print(f"monitor: {decision['action']} ({'; '.join(decision['reasons'])}); monitor.act is false: "
              "`fraud-detection monitor act` acts on it")  # fmt: skip
