"""The project's logging configuration is the one in use: a Kedro session (what `kedro run` starts) and the
`fraud-detection` command line both configure logging from conf/logging.yml. Lightning's adverts are dropped and
its repeated lines and hints do not flood the log."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import kedro.framework.project
import pytest
import yaml
from lightning_fabric.utilities.warnings import PossibleUserWarning

from fraud_detection.cli import main
from fraud_detection.models.lightning_logs import IGNORED_WARNINGS, LOGGERS, LightningNoise, quiet_lightning
from fraud_detection.runtime.logs import LOGGING_FILE, logging_config, logging_file
from tests.conftest import PROJECT_ROOT
from tests.runtime.test_progress import fit_tiny

PROJECT_FILE = PROJECT_ROOT / LOGGING_FILE
PROBE = "fraud_detection.probe"
# The logging state of the process after `START` ran, as JSON on stdout's last line; a probe record on the way.
REPORT = """
import json, logging, sys
root = logging.getLogger()
logging.getLogger("fraud_detection.probe").info("probe record")
print(json.dumps({
    "root_level": logging.getLevelName(root.level),
    "root_handlers": [[h.name, f"{type(h).__module__}.{type(h).__qualname__}"] for h in root.handlers],
    "levels": {name: logging.getLevelName(logging.getLogger(name).level) for name in sys.argv[1:]},
}))
"""
KEDRO_SESSION = """
from pathlib import Path
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

bootstrap_project(Path.cwd())
session = KedroSession.create(project_path=Path.cwd())
"""
COMMAND_LINE = """
import sys
from fraud_detection.cli import main

reported, sys.argv = sys.argv, ["fraud-detection", "notebook", "no_such_notebook"]
print("exit", main())
sys.argv = reported
"""


def expected_state(config: dict) -> dict:
    """What the file sets: the root's level and handlers (by name and class), each logger's level."""
    handlers = config["handlers"]
    return {
        "root_level": config["root"].get("level", "WARNING"),
        "root_handlers": [[name, handlers[name]["class"]] for name in config["root"]["handlers"]],
        "levels": {name: logger["level"] for name, logger in config["loggers"].items()},
    }


def run_and_report(start: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "KEDRO_LOGGING_CONFIG"}
    loggers = list(logging_config(PROJECT_FILE)["loggers"])
    run = subprocess.run([sys.executable, "-c", start + REPORT, *loggers], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=300, check=False)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def test_the_project_file_differs_from_kedros_default() -> None:
    """Otherwise the tests below could not tell whether the project's file was read."""
    default = Path(kedro.framework.project.__file__).parent / "rich_logging.yml"
    config = logging_config(PROJECT_FILE)
    assert expected_state(config) != expected_state(yaml.safe_load(default.read_text()))


def test_a_kedro_session_logs_as_the_project_file_says() -> None:
    run = run_and_report(KEDRO_SESSION, PROJECT_ROOT)
    assert json.loads(run.stdout.splitlines()[-1]) == expected_state(logging_config(PROJECT_FILE))
    assert f"INFO    {PROBE}: probe record" in run.stderr, "a project record, on stderr, in the file's format"
    assert "probe record" not in run.stdout


@pytest.mark.parametrize("folder", [".", "docs"], ids=["root", "subfolder"])
def test_the_command_line_logs_as_the_project_file_says(folder: str) -> None:
    run = run_and_report(COMMAND_LINE, PROJECT_ROOT / folder)
    assert "exit 2" in run.stdout and "no_such_notebook" in run.stderr, "the command ran and refused the name"
    assert json.loads(run.stdout.splitlines()[-1]) == expected_state(logging_config(PROJECT_FILE))
    assert f"INFO    {PROBE}: probe record" in run.stderr


def test_a_caller_of_main_keeps_its_own_logging() -> None:
    root = logging.getLogger()
    before = list(root.handlers), root.level
    assert main(["notebook", "no_such_notebook"]) == 2
    assert (list(root.handlers), root.level) == before


def test_kedro_logging_config_names_another_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KEDRO_LOGGING_CONFIG", raising=False)
    assert logging_file(PROJECT_ROOT) == PROJECT_FILE
    monkeypatch.setenv("KEDRO_LOGGING_CONFIG", str(tmp_path / "mine.yml"))
    assert logging_file(PROJECT_ROOT) == tmp_path / "mine.yml"


def test_a_bad_logging_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot read the logging configuration .*missing\.yml"):
        logging_config(tmp_path / "missing.yml")
    (tmp_path / "list.yml").write_text("- a\n- b\n")
    with pytest.raises(ValueError, match=r"list\.yml holds no logging configuration; expected a mapping"):
        logging_config(tmp_path / "list.yml")


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord(LOGGERS[0], logging.INFO, __file__, 1, message, None, None)


def test_lightning_adverts_are_dropped_and_its_facts_shown_once() -> None:
    noise = LightningNoise()
    advert = "💡 Tip: For seamless cloud logging and experiment tracking, try installing [litlogger](...)"
    assert not noise.filter(_record(advert))
    assert noise.filter(_record("GPU available: True (cuda), used: True"))
    assert not noise.filter(_record("GPU available: True (cuda), used: True"))
    assert noise.filter(_record("LOCAL_RANK: 0 - CUDA_VISIBLE_DEVICES: [0]"))
    assert not noise.filter(_record("LOCAL_RANK: 0 - CUDA_VISIBLE_DEVICES: [0]"))
    assert noise.filter(_record("epoch 3: loss 0.1")) and noise.filter(_record("epoch 3: loss 0.1")), "others pass"


def test_lightnings_hints_that_do_not_apply_are_ignored_and_no_others() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        quiet_lightning()
        quiet_lightning()  # idempotent: the filters are not added (nor reordered) again
        assert sum(f[0] == "ignore" and f[2] is PossibleUserWarning for f in warnings.filters) == len(IGNORED_WARNINGS)
        workers = "The 'train_dataloader' does not have many workers which may be a bottleneck. Consider ..."
        warnings.warn(workers, PossibleUserWarning, stacklevel=1)
        interval = "The number of training batches (5) is smaller than the logging interval Trainer(...)."
        warnings.warn(interval, PossibleUserWarning, stacklevel=1)
        warnings.warn("some other possible mistake", PossibleUserWarning, stacklevel=1)
        from pytorch_lightning.utilities._pytree import _tree_flatten

        _tree_flatten(1.0)  # Lightning builds torch's deprecated LeafSpec: its FutureWarning is ignored
        warnings.warn("`isinstance(x, Other)` is deprecated", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["some other possible mistake", "`isinstance(x, Other)` is deprecated"]


def test_lightning_still_says_what_the_filters_match() -> None:
    """Contract with pytorch_lightning 2.6: the texts filtered are the ones it emits, from the loggers filtered."""
    import inspect

    from pytorch_lightning.accelerators import cuda
    from pytorch_lightning.loops import fit_loop
    from pytorch_lightning.trainer import setup
    from pytorch_lightning.trainer.connectors import data_connector
    from pytorch_lightning.trainer.connectors.logger_connector import logger_connector

    assert "💡 Tip: For seamless cloud logging" in inspect.getsource(logger_connector)
    assert 'rank_zero_info(f"GPU available:' in inspect.getsource(setup)
    assert '_log.info(f"LOCAL_RANK:' in inspect.getsource(cuda) and cuda._log.name == LOGGERS[1]
    assert "does not have many workers which may be a bottleneck" in inspect.getsource(data_connector)
    assert "is smaller than the logging interval" in inspect.getsource(fit_loop)


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_two_fits_log_no_advert_and_each_fact_once(small_train_params) -> None:
    collect = Collect()
    rank_zero = logging.getLogger(LOGGERS[0])
    rank_zero.addHandler(collect)
    try:
        fit_tiny(small_train_params)
        fit_tiny(small_train_params)
    finally:
        rank_zero.removeHandler(collect)
    assert not [m for m in collect.messages if "Tip:" in m]
    assert sum(m.startswith("GPU available:") for m in collect.messages) <= 1
    assert len(collect.messages) == len(set(collect.messages)), f"a line repeated: {collect.messages}"
