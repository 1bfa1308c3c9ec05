"""The schedule as an Airflow DAG file: a DAG per job, its one task running the crontab line's command.

From our own template, not kedro-airflow's: kedro-airflow (0.11, which installs beside our pins and leaves Airflow
out) turns one Kedro pipeline into tasks that run its nodes inside the Airflow worker. Our jobs are DVC stages (so
that dvc.lock records what ran, and only what changed runs again) and CLI operations (the rollout tick, the online
learner, monitor act), which it cannot express. Airflow itself is not a dependency of the project: only the machine
that runs the DAG needs it.
"""

from __future__ import annotations

import pprint
from pathlib import Path

from fraud_detection.schedule.jobs import command, jobs
from fraud_detection.schedule.params import ScheduleParams

_TEMPLATE = '''"""Airflow DAGs of the fraud-detection schedule for the project at {root}: generated from params.yaml
`schedule` by `fraud-detection schedule --airflow`, so change params.yaml and generate it again rather than edit it.

A DAG per job, one run at a time, no catch-up; each task runs the same command as the job's crontab line (its locks
included, so cron and Airflow never run a job twice at once). Times are on Airflow's clock (its default_timezone).
"""

from datetime import datetime

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.operators.bash import BashOperator

# (job, cron schedule, what it does, command)
JOBS = {jobs}

for job, cron, what, bash_command in JOBS:
    with DAG(
        dag_id=f"fraud_detection_{{job}}",
        schedule=cron,
        start_date=datetime(2000, 1, 1),  # any past moment: with catchup off, the first run is the next one due
        catchup=False,
        max_active_runs=1,
        description=what,
        tags=["fraud_detection"],
    ) as dag:
        BashOperator(task_id=job, bash_command=bash_command)
    globals()[dag.dag_id] = dag
'''


def dag_file(schedule: ScheduleParams, monitor_acts: bool, root: Path, tools: Path) -> str:
    """The Python source of the DAG file (it imports Airflow, so only Airflow's scheduler loads it)."""
    rows = [(job.name, job.cadence.cron, job.what, command(job, schedule, root, tools))
            for job in jobs(schedule, monitor_acts)]  # fmt: skip
    return _TEMPLATE.format(root=root, jobs=pprint.pformat(rows, width=116))
