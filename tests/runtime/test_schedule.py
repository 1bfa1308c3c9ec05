"""The schedule (`fraud-detection schedule`): one crontab (or Airflow DAG file) generated from params.yaml
`schedule`, each line at the cadence params say, each job under its own lock; and (slow) every scheduled command run
once, as its crontab line, on a small-profile copy of the project."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fraud_detection.cli import main
from fraud_detection.runtime.params import Params
from fraud_detection.schedule.jobs import Cadence, Job, command, crontab, jobs
from fraud_detection.schedule.params import WEEKDAYS
from tests.conftest import PROJECT_ROOT, changed, params_problem
from tests.project_copy import committed_project, project_env, use_small_profile

TOOLS = Path(sys.executable).parent
JOB_NAMES = ["batch_predict", "feedback", "monitor", "rollout_tick", "online_learner", "retrain"]


def entries(table: str) -> dict[str, tuple[list[str], str]]:
    """A crontab's lines by job (the name its log is named after): the five time fields and the command."""
    found = {}
    for line in table.splitlines():
        if not line or line.startswith("#") or line.startswith("SHELL="):
            continue
        *fields, rest = line.split(" ", 5)
        assert len(fields) == 5, line
        name = rest.rsplit("/", 1)[1].removesuffix(".log 2>&1")
        found[name] = (fields, rest)
    return found


def daily_fields(at: str) -> list[str]:
    hour, minute = at.split(":")
    return [str(int(minute)), str(int(hour)), "*", "*", "*"]


def test_the_crontab_has_a_line_per_job_at_the_cadence_params_say(params: Params) -> None:
    schedule = params.schedule
    found = entries(crontab(schedule, params.monitor.act, PROJECT_ROOT, TOOLS))
    assert list(found) == JOB_NAMES
    for name in ("batch_predict", "feedback", "monitor", "rollout_tick"):
        assert found[name][0] == daily_fields(getattr(schedule, name).at)
    assert found["retrain"][0] == [
        *daily_fields(schedule.retrain.at)[:4],
        str(WEEKDAYS.index(schedule.retrain.weekday)),
    ]
    assert found["online_learner"][0] == [f"*/{schedule.online_learner.every_minutes}", "*", "*", "*", "*"]
    for name, (_, line) in found.items():
        assert line.startswith(f"cd {PROJECT_ROOT} && ")
        assert f"flock -n {schedule.log_dir}/{name}.lock" in line
        assert line.endswith(f">> {schedule.log_dir}/{name}.log 2>&1")
    assert "dvc repro --single-item ingest features materialize batch_predict" in found["batch_predict"][1]
    assert "fraud-detection online-learner run" in found["online_learner"][1]


def test_a_params_change_changes_the_crontab(params: Params) -> None:
    retrain = {"weekday": "wednesday", "at": "23:59"}
    schedule = changed(params.schedule, env="production", monitor={"at": "04:45"}, retrain=retrain,
                       online_learner={"every_minutes": 60})  # fmt: skip
    before = entries(crontab(params.schedule, False, PROJECT_ROOT, TOOLS))
    after = entries(crontab(schedule, True, PROJECT_ROOT, TOOLS))
    assert after["monitor"][0] == ["45", "4", "*", "*", "*"] != before["monitor"][0]
    assert after["retrain"][0] == ["59", "23", "*", "*", "3"]
    assert after["online_learner"][0] == ["0", "*", "*", "*", "*"]
    assert after["batch_predict"] != before["batch_predict"]  # the environment reaches every job
    for name in JOB_NAMES:
        assert "KEDRO_ENV=production" in after[name][1]
    assert "fraud-detection rollout --env production tick" in after["rollout_tick"][1]
    assert "fraud-detection monitor --env production act" in after["monitor"][1]  # monitor.act: true
    assert "monitor act" not in before["monitor"][1]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"monitor": {"at": "25:00"}}, """params.yaml schedule.monitor.at: expected a time of day in quotes, "HH:MM"
         from "00:00" to "23:59"; got '25:00'"""),
        ({"monitor": {"at": 1439}}, "got 1439 (YAML reads an unquoted 23:59 as the number 1439: quote it)"),
        ({"retrain": {"weekday": "sundy", "at": "03:00"}}, "params.yaml schedule.retrain.weekday='sundy': expected "
         "'sunday' or 'monday'"),
        ({"online_learner": {"every_minutes": 7}}, "params.yaml schedule.online_learner.every_minutes=7: expected 1 "
         "or 2"),
    ],
)  # fmt: skip
def test_a_bad_schedule_names_the_key_the_value_and_what_was_expected(config_loader, changes, problem: str) -> None:
    assert " ".join(problem.split()) in params_problem(dict(config_loader["parameters"]), "schedule", **changes)


def test_a_job_never_overlaps_itself(params: Params, tmp_path: Path) -> None:
    """A run due while the previous one still holds the job's lock is skipped."""
    ran = tmp_path / "ran"
    job = Job("slow", Cadence("* * * * *", "every minute"), (("sh", "-c", f"echo run >> {ran}; sleep 2"),), True, "")
    line = command(job, params.schedule, tmp_path, TOOLS)
    first = subprocess.Popen(["sh", "-c", line])
    time.sleep(0.5)
    second = subprocess.run(["sh", "-c", line], check=False, timeout=60)
    assert first.wait(timeout=60) == 0
    assert second.returncode != 0
    assert ran.read_text() == "run\n"
    assert (tmp_path / params.schedule.log_dir / "slow.lock").exists()
    assert (tmp_path / params.schedule.log_dir / "dvc.lock").exists()  # a DVC job also holds the shared lock


def test_the_airflow_dag_file_runs_the_crontab_commands(params: Params, tmp_path: Path, capsys) -> None:
    assert main(["schedule"]) == 0
    table = entries(capsys.readouterr().out)
    dag = tmp_path / "dags" / "fraud_detection.py"
    assert main(["schedule", "--airflow", str(dag)]) == 0
    source = dag.read_text()
    compile(source, str(dag), "exec")
    rows = next(ast.literal_eval(node.value) for node in ast.parse(source).body
                if isinstance(node, ast.Assign) and node.targets[0].id == "JOBS")  # fmt: skip
    assert [row[0] for row in rows] == JOB_NAMES == [job.name for job in jobs(params.schedule, params.monitor.act)]
    for name, cron, _, bash_command in rows:
        fields, line = table[name]
        assert cron.split() == fields
        assert line == f"{bash_command} >> {params.schedule.log_dir}/{name}.log 2>&1"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_scheduled_command_runs_once_on_the_small_profile(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The crontab's lines, run as cron would (from /bin/sh), on a copy of the project: the weekly retrain first
    (it builds everything), a day of traffic, then the daily jobs in their order and the online learner."""
    project = use_small_profile(committed_project(tmp_path_factory.mktemp("schedule") / "project"))
    env = project_env(project)
    cli = [sys.executable, "-m", "fraud_detection.cli"]
    printed = subprocess.run([*cli, "schedule"], cwd=project, env=env, capture_output=True, text=True, check=False,
                             timeout=300)  # fmt: skip
    assert printed.returncode == 0, printed.stderr
    table = entries(printed.stdout)
    logs = project / "data" / "logs"

    def run(name: str) -> str:
        job = subprocess.run(["/bin/sh", "-c", table[name][1]], cwd="/", env=env, check=False, timeout=1500)
        log = (logs / f"{name}.log").read_text()
        assert job.returncode == 0, log[-4000:]
        assert f" {name}\n" in log
        return log

    run("retrain")
    assert json.loads((project / "reports" / "promotion.json").read_text())["decision"]["promoted"] is True
    published = {p.name for p in (project / "data/07_model_output/predictions").iterdir()}
    traffic = subprocess.run([*cli, "traffic", "run", "--days", "1", "--in-process"], cwd=project, env=env,
                             capture_output=True, text=True, check=False, timeout=900)  # fmt: skip
    assert traffic.returncode == 0, traffic.stdout + traffic.stderr

    assert "Running stage 'batch_predict'" in run("batch_predict")
    assert len({p.name for p in (project / "data/07_model_output/predictions").iterdir()} - published) == 1
    assert "Running stage 'feedback'" in run("feedback")
    assert json.loads((project / "reports" / "feedback.json").read_text())["predictions"] > 0
    monitor = run("monitor")
    assert "Running stage 'monitor'" in monitor and "Running stage 'notebook_monitoring_review'" in monitor
    assert "Running stage 'train'" not in monitor  # the daily jobs never retrain
    assert "no rollout running" in run("rollout_tick")
    assert "champion_version: " in run("online_learner")
