"""`fraud-detection schedule [--airflow PATH]`: what runs on a cadence, from params.yaml `schedule`, as a crontab (or
an Airflow DAG file)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from fraud_detection.cli import common


def add_commands(groups: Any) -> None:
    schedule = common.add_parser(groups, "schedule", help="the jobs that run on a cadence, as a crontab (install: "
                                 "`fraud-detection schedule | crontab -`), or an Airflow DAG",
                                 example="fraud-detection schedule --airflow dags/fraud_detection.py")  # fmt: skip
    schedule.add_argument("--airflow", type=Path, default=None, metavar="PATH",
                          help="write the schedule as an Airflow DAG file to PATH instead")  # fmt: skip
    schedule.set_defaults(command=_schedule)


def _schedule(args: argparse.Namespace) -> None:
    from fraud_detection.runtime.project import project_params, project_root
    from fraud_detection.schedule.airflow import dag_file
    from fraud_detection.schedule.jobs import crontab

    root = project_root()
    params = project_params(root=root)
    tools = Path(sys.executable).parent  # this virtualenv's bin/ (not resolved: a venv's python is a link)
    if args.airflow is None:
        print(crontab(params.schedule, params.monitor.act, root, tools), end="")
        return
    args.airflow.parent.mkdir(parents=True, exist_ok=True)
    args.airflow.write_text(dag_file(params.schedule, params.monitor.act, root, tools))
    print(f"{args.airflow}: the schedule as Airflow DAGs (one per job)")
