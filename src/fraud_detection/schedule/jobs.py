"""The schedule as data: each job's name, cadence and commands, built from params.yaml; and the same schedule as a
crontab or an Airflow DAG file.

Every job runs from the project root with the virtualenv's executables first on PATH (DVC stages call `kedro`), under
its own lock (`flock -n`: a run still going when the next is due makes the next one skip), appending to its own log.
The jobs that run DVC also share one lock, waited for, so two `dvc repro` never meet (DVC would refuse the second).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from fraud_detection.schedule.params import WEEKDAYS, Daily, ScheduleParams, Weekly

MINUTES_PER_HOUR = 60
DVC_LOCK = "dvc.lock"  # under log_dir: held by whichever job is running DVC


@dataclass(frozen=True)
class Cadence:
    cron: str  # five fields: minute hour day-of-month month day-of-week
    words: str


@dataclass(frozen=True)
class Job:
    name: str
    cadence: Cadence
    steps: tuple[tuple[str, ...], ...]  # command lines run in order, each only if the one before succeeded
    runs_dvc: bool
    what: str


def jobs(schedule: ScheduleParams, monitor_acts: bool) -> list[Job]:
    """The schedule: the daily jobs in the order a day's data flows through them, the online learner, the retrain.
    `monitor_acts` (params.yaml `monitor.act`): the monitor job also acts on its decision."""
    env = ("--env", schedule.env) if schedule.env else ()
    monitor_steps = [("dvc", "repro", "--force", "--single-item", "monitor", "notebook_monitoring_review")]
    if monitor_acts:
        monitor_steps.append(("fraud-detection", "monitor", *env, "act"))
    return [
        Job("batch_predict", _daily(schedule.batch_predict),
            (("dvc", "repro", "--single-item", "ingest", "features", "materialize", "batch_predict"),), True,
            "the new day ingested and its features computed, scored by the current champion (no retraining)"),
        Job("feedback", _daily(schedule.feedback), (("dvc", "repro", "feedback"),), True,
            "served predictions joined with the outcomes known so far"),
        Job("monitor", _daily(schedule.monitor), tuple(monitor_steps), True,
            "drift and live quality, the monitoring review" + (", then acting on the decision" if monitor_acts else
                                                               " (monitor.act is false: it only recommends)")),
        Job("rollout_tick", _daily(schedule.rollout_tick), (("fraud-detection", "rollout", *env, "tick"),), False,
            "the running rollout's step judged on its outcomes (nothing when none runs)"),
        Job("online_learner", _every(schedule.online_learner.every_minutes),
            (("fraud-detection", "online-learner", *env, "run"),), False,
            "the label events not yet learned; a new champion (the retrain) restarts it"),
        Job("retrain", _weekly(schedule.retrain), (("dvc", "repro"),), True,
            "every stage whose inputs changed: train on the newest window, evaluate, gate, register"),
    ]  # fmt: skip


def _daily(daily: Daily) -> Cadence:
    hour, minute = (int(part) for part in daily.at.split(":"))
    return Cadence(f"{minute} {hour} * * *", f"daily at {daily.at}")


def _weekly(weekly: Weekly) -> Cadence:
    daily = _daily(weekly)
    return Cadence(daily.cron[:-1] + str(WEEKDAYS.index(weekly.weekday)), f"{weekly.weekday}s at {weekly.at}")


def _every(minutes: int) -> Cadence:
    if minutes == MINUTES_PER_HOUR:
        return Cadence("0 * * * *", "hourly")
    return Cadence(f"*/{minutes} * * * *", f"every {minutes} minutes")


def command(job: Job, schedule: ScheduleParams, root: Path, tools: Path) -> str:
    """The shell command of `job`: from `root`, `tools` (the virtualenv's bin/) first on PATH, under its locks. Its
    output is left to the caller (cron appends it to the job's log; Airflow keeps it itself)."""
    logs = shlex.quote(schedule.log_dir)
    script = "; ".join([f'echo "== $(date -u) {job.name}"', " && ".join(shlex.join(step) for step in job.steps)])
    variables = [f'PATH={shlex.quote(str(tools))}:"$PATH"']
    if schedule.env:
        variables.append(f"KEDRO_ENV={shlex.quote(schedule.env)}")  # the DVC stages' `kedro run`
    locks = [f"flock -n {logs}/{job.name}.lock"]
    if job.runs_dvc:
        locks.append(f"flock -w {schedule.dvc_lock_wait_minutes * 60} {logs}/{DVC_LOCK}")
    return (f"cd {shlex.quote(str(root))} && mkdir -p {logs} && {' '.join(variables)} {' '.join(locks)} "
            f"sh -c {shlex.quote(script)}")  # fmt: skip


def crontab(schedule: ScheduleParams, monitor_acts: bool, root: Path, tools: Path) -> str:
    """The schedule as a crontab: a comment and a line per job, each appending to <log_dir>/<job>.log."""
    lines = ["# fraud-detection schedule, generated from params.yaml `schedule` by `fraud-detection schedule`",
             f"# project {root}; logs in {schedule.log_dir}/<job>.log; install: fraud-detection schedule | crontab -",
             "SHELL=/bin/sh"]  # fmt: skip
    for job in jobs(schedule, monitor_acts):
        line = f"{command(job, schedule, root, tools)} >> {shlex.quote(schedule.log_dir)}/{job.name}.log 2>&1"
        lines += ["", f"# {job.name}, {job.cadence.words}: {job.what}", f"{job.cadence.cron} {_cron_escaped(line)}"]
    return "\n".join(lines) + "\n"


def _cron_escaped(line: str) -> str:
    """cron turns an unescaped % of a command into a newline."""
    return line.replace("%", r"\%")
