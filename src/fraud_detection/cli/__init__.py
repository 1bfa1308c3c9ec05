"""`fraud-detection`: the operations that are not pipeline stages. Run from the project root.

    fraud-detection registry status                 versions, aliases, key metrics
    fraud-detection registry promote VERSION        champion if VERSION passes the gate (--force: without it)
    fraud-detection registry rollback               champion goes back to the previous champion
    fraud-detection registry history                every alias move: time, actor, action, reason
    fraud-detection registry import-bento           the champion (or --alias challenger) into BentoML's store
    fraud-detection serve build                     a Bento of the service with the serving aliases' models
    fraud-detection notebook NAME                   notebooks/NAME.ipynb executed into reports/notebooks/ (+ HTML)
    fraud-detection monitor act                     do what reports/monitoring.json recommends (retrain, rollback)
    fraud-detection monitor run                     the monitor stage (forced), then act if `monitor.act` is true
    fraud-detection traffic run --days N            the world after the data: N more days sent to the service
                                                    (--in-process or --url), their labels published
    fraud-detection feedback consume [--follow S]   label events into the online store (at least once)
    fraud-detection online-learner run [--follow S] the champion's copy learns the label stream (alias `online`)
    fraud-detection online-learner status           its checkpoint, lag, held-back examples, last validation
    fraud-detection experiment analyze              the A/B analysis (--input FILE, --shares A=0.9,B=0.1)
    fraud-detection experiment start NAME --shares  serve a split (A/B/C) from now on; `stop`, `status`
    fraud-detection rollout start [CANDIDATE]       roll the challenger (or a version) out: shadow, 1 %, ... 100 %
    fraud-detection rollout status|tick|abort       where it stands; judge the step (advance, promote, abort)
    fraud-detection production run [--days N]      the whole system on Spark, Redis, the MLflow server, a Bento
    fraud-detection dev dvc-deps [--check|--write]  each DVC stage's code deps: the import closure of what it runs

A group's options go before or after its command: `registry --env production status` is `registry status --env
production`. `--env production` uses conf/production (the MLflow tracking server). Every --help ends with an
example. Bad input (an unknown version, another model's version, an unreachable registry) prints what was wrong and
changes nothing (exit status 2); a notebook whose cell fails prints the cell's error and leaves the previous reports
in place (exit status 1).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from fraud_detection.cli import (
    common,
    dev,
    experiment,
    feedback,
    monitor,
    notebook,
    online_learner,
    production,
    registry,
    rollout,
    schedule,
    serve,
    traffic,
)
from fraud_detection.runtime.telemetry import disable_telemetry

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1

# Kedro imports `<package>.cli` and merges its `cli` group into `kedro`'s commands. We add none there: Kedro's own
# `kedro registry` (its pipeline registry) would be shadowed. Our commands are `fraud-detection ...` (`main`).
cli = click.Group("fraud_detection", help="fraud_detection adds no kedro commands; see `fraud-detection --help`")


def main(argv: list[str] | None = None) -> int:
    disable_telemetry()
    if argv is None:  # the command line, not a caller: `fraud-detection registry history | head` ends quietly
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    args = parser().parse_args(argv)
    if argv is None:  # the command line: the project's logging, as `kedro run` has it (a caller's is left alone)
        _project_logging()
    with _quiet_logs("kedro", "fraud_detection"):  # stdout is the command's output (`--json | jq`)
        return _run(args)


def _project_logging() -> None:
    """Logging from conf/logging.yml (runtime/logs.py); outside the project the command itself says what is wrong."""
    from fraud_detection.runtime.logs import use_project_logging
    from fraud_detection.runtime.project import NotInProject, project_root

    try:
        use_project_logging(project_root())
    except NotInProject:
        return


@contextmanager
def _quiet_logs(*names: str) -> Iterator[None]:
    """These loggers at WARNING while the command runs (then as they were: a caller's logging is left alone)."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _run(args: argparse.Namespace) -> int:
    """The command, its expected failures as a message and an exit status."""
    from fraud_detection.feedback import TrafficError
    from fraud_detection.monitoring.actions import ActionFailed
    from fraud_detection.registry.locks import LockTimeout
    from fraud_detection.registry.registry import RegistryError, RegistryUnreachable
    from fraud_detection.reporting.notebooks import NotebookError, NotebookFailed
    from fraud_detection.runtime.project import NotInProject

    try:
        args.command(args)
    except (RegistryError, RegistryUnreachable, LockTimeout, NotInProject, NotebookError, TrafficError,
            experiment.ExperimentInputError) as error:  # fmt: skip
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except click.ClickException as error:
        from fraud_detection.runtime.params import ParamsError  # imported already if params.yaml was checked

        if not isinstance(error, ParamsError):
            raise
        print(f"error: {error.format_message()}", file=sys.stderr)  # params.yaml breaks its schema: one line each
        return EXIT_BAD_INPUT
    except (NotebookFailed, ActionFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def parser() -> argparse.ArgumentParser:
    """Every command group's parser (each group's module adds its own)."""
    top = argparse.ArgumentParser(prog="fraud-detection", description=__doc__.split("\n\n")[0],
                                  epilog=common.example_epilog("fraud-detection registry status --env production"),
                                  formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    groups = top.add_subparsers(required=True, metavar="GROUP")
    for group in (registry, serve, notebook, monitor, traffic, feedback, online_learner, experiment, rollout, dev):
        group.add_commands(groups)
    schedule.add_commands(groups)
    production.add_commands(groups)
    return top
