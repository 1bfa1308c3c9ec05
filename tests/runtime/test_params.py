"""params.yaml is checked once, by one typed model per top-level key: a wrong type, a value out of range or an unknown
key fails with the dotted key, the value and what was expected; the values live in params.yaml only."""

from __future__ import annotations

import copy
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fraud_detection.runtime.kedro_project import typed_entries, typed_value
from fraud_detection.runtime.param_model import ParamModel
from fraud_detection.runtime.params import Params, ParamsError, checked_params
from tests.conftest import PROJECT_ROOT


@pytest.fixture
def raw(config_loader) -> dict[str, Any]:
    return copy.deepcopy(config_loader["parameters"])


def _problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(ParamsError) as error:
        checked_params(raw)
    return str(error.value.message).splitlines()


def test_params_yaml_is_valid_and_every_key_is_a_stage_or_a_shared_block(raw: dict) -> None:
    params = checked_params(raw)
    assert set(raw) == set(Params.model_fields) == set(params.model_dump())


@pytest.mark.parametrize(
    ("path", "value", "problem"),
    [
        (("train", "batch_size"), -5, "params.yaml train.batch_size=-5: expected an integer >= 1"),
        (("train", "batch_size"), "512", "params.yaml train.batch_size='512': expected an integer >= 1"),
        (("train", "dropout"), 1.0, "params.yaml train.dropout=1.0: expected a number in [0, 1)"),
        (("train", "optimizer"), "adagrad", "params.yaml train.optimizer='adagrad': expected 'adam' or 'adamw' or"),
        (("train", "trainer", "num_nodes"), 0, "params.yaml train.trainer.num_nodes=0: expected an integer >= 1"),
        (("features", "label_delay_days"), -1, "params.yaml features.label_delay_days=-1: expected an integer >= 0"),
        (("serve", "access_log"), "no", "params.yaml serve.access_log='no': expected true or false"),
        (("serve", "shadow"), 3, "params.yaml serve.shadow=3: expected a string or null"),
        (("evaluate", "first_test_start"), "soon", "params.yaml evaluate.first_test_start='soon': expected a date"),
        (
            ("materialize", "end"),
            "soon",
            "params.yaml materialize.end='soon': expected 'latest' or a date or date-time",
        ),
        (("spark", "conf", "spark.driver.memory"), [4], "params.yaml spark.conf.spark.driver.memory=[4]: expected a"),
        (("register", "gate", "min_auc_roc"), 1.5, "params.yaml register.gate.min_auc_roc=1.5: expected a number in"),
    ],
)
def test_a_bad_value_names_the_key_the_value_and_what_was_expected(raw: dict, path, value, problem: str) -> None:
    *parents, last = path
    block = raw
    for key in parents:
        block = block[key]
    block[last] = value
    [line] = _problems(raw)
    assert line.startswith(problem), line


def test_an_unknown_key_is_a_typo_not_a_silent_default(raw: dict) -> None:
    raw["train"]["batchsize"] = 256
    raw["trainn"] = {}
    problems = _problems(raw)
    assert problems[0].startswith("params.yaml train.batchsize=256: unknown key; expected one of ['window_days'")
    assert "'batch_size'" in problems[0]
    assert problems[1].startswith("params.yaml trainn={}: unknown key; expected one of ['simulate', 'ingest'")


def test_a_missing_key_is_named_with_what_it_should_be(raw: dict) -> None:
    del raw["monitor"]["act"]
    del raw["notebooks"]
    assert _problems(raw) == [
        "params.yaml monitor.act is missing; expected true or false",
        "params.yaml notebooks is missing; expected a mapping with the keys ['cell_timeout_s', 'data_overview', "
        "'model_evaluation', 'monitoring_review']",
    ]


def test_every_problem_is_reported_at_once(raw: dict) -> None:
    raw["train"]["batch_size"], raw["ingest"]["engine"], raw["serve"]["workers"] = 0, "pandas", 0
    assert _problems(raw) == [
        "params.yaml ingest.engine='pandas': expected 'polars' or 'spark'",
        "params.yaml train.batch_size=0: expected an integer >= 1",
        "params.yaml serve.workers=0: expected an integer >= 1 or 'cpu_count'",
    ]


def test_checks_across_keys_say_what_they_expected(raw: dict) -> None:
    raw["serve"]["thresholds"] = {"review": 0.8, "decline": 0.7}
    raw["serve"]["ab"]["variants"] = {"champion": 0.5, "challenger": 0.4}
    raw["batch_predict"]["start_date"] = "2018-09-01"
    assert _problems(raw) == [
        "params.yaml serve.thresholds: expected review <= decline (0.8 > 0.7)",
        "params.yaml serve.ab: expected variants' shares summing to 1 (they sum to 0.9)",
        "params.yaml batch_predict: expected start_date and end_date both set (a backfill) or both null",
    ]


def test_values_shared_by_stages_live_under_one_key(raw: dict) -> None:
    """The label delay, the gate's floors and the amount rule are read from one place each."""
    assert "delay_days" not in raw["evaluate"]
    assert set(raw["monitor"]["guardrail"]) == {"rollback_margin"}
    assert "amount_threshold" not in raw["serve"]["fallback"]


def test_no_params_model_has_a_default() -> None:
    """Values live in params.yaml only: a default in code could disagree with it."""
    models, seen = [Params], set()
    while models:
        model = models.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, field in model.model_fields.items():
            assert field.is_required(), f"{model.__name__}.{name} has a default in code"
            models.extend(_models_in(field.annotation))
    assert len(seen) > 20


def _models_in(annotation: Any) -> list[type]:
    found = []
    if isinstance(annotation, type) and issubclass(annotation, ParamModel):
        found.append(annotation)
    for argument in getattr(annotation, "__args__", ()) or ():
        found.extend(_models_in(argument))
    for meta in getattr(annotation, "__metadata__", ()) or ():
        found.extend(_models_in(meta))
    return found


def test_every_dotted_key_has_its_typed_value(params: Params) -> None:
    entries = typed_entries(params)
    assert entries["train"] is params.train and entries["train.trainer.devices"] == params.train.trainer.devices
    assert entries["features.label_delay_days"] == params.features.label_delay_days
    assert typed_value(params, "spark.conf.spark.sql.shuffle.partitions") == 8, "a key holding dots"
    assert all(typed_value(params, key) == value for key, value in entries.items())


def test_kedro_run_fails_in_seconds_before_any_node_with_the_problem(tmp_path: Path) -> None:
    for name in ("pyproject.toml", "params.yaml"):
        (tmp_path / name).write_bytes((PROJECT_ROOT / name).read_bytes())
    (tmp_path / "conf").symlink_to(PROJECT_ROOT / "conf")
    (tmp_path / "src").mkdir()  # Kedro wants the source folder; the code is the installed package
    kedro = str(Path(sys.executable).parent / "kedro")
    started = time.monotonic()
    run = subprocess.run([kedro, "run", "--pipelines", "simulate", "--params", "train.batch_size=-5"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert run.returncode == 2, run.stdout + run.stderr
    assert "params.yaml train.batch_size=-5: expected an integer >= 1" in run.stderr
    assert "Traceback" not in run.stderr and "Running node" not in run.stdout + run.stderr
    assert not (tmp_path / "data").exists(), "nothing ran, nothing written"
    assert time.monotonic() - started < 30
