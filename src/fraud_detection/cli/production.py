"""`fraud-detection production run`: the whole system on the production profile, on this machine (`make production`;
production/run.py)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fraud_detection.cli import common


def add_commands(groups: Any) -> None:
    production = common.Group(groups, "production", help="the whole system on real engines (Spark, Redis, MLflow)",
                              example="fraud-detection production run", options=())  # fmt: skip
    run = production.command("run", help="start what is not running, run every step on it, stop what it started",
                             example="fraud-detection production run --days 2")  # fmt: skip
    run.add_argument("--days", type=int, default=1, help="simulated days of traffic sent through the Bento (default 1)")
    run.set_defaults(command=_run)


def _run(args: argparse.Namespace) -> None:
    from fraud_detection.production.run import Production, StepFailed, summary
    from fraud_detection.production.services import ServiceError
    from fraud_detection.runtime.project import project_root

    if args.days < 1:
        raise SystemExit(f"--days {args.days}: expected a whole number of days >= 1")
    production = Production(project_root(), days=args.days)
    try:
        results = production.run()
    except (StepFailed, ServiceError) as error:
        print(f"production: {error}", file=sys.stderr)
        raise SystemExit(1) from error
    print(summary(results, production.timings))
