"""`fraud-detection experiment analyze`: the experiment stage's analysis from the command line, on the feedback
stage's labelled predictions or a file of the same columns, with the design from `--shares`, params.yaml or the
split that serves now (its rows since it started). `experiment start|stop|status`: a split (A/B/C) as registry
state, served without a restart (experiments/split.py)."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from fraud_detection.cli import common


class ExperimentInputError(ValueError):
    """Bad input to the analysis: the message names the field, the value and what was expected."""


def add_commands(groups: Any) -> None:
    experiment = common.Group(groups, "experiment", help="A/B experiments: the variants compared on their outcomes",
                              example="fraud-detection experiment status --env production")  # fmt: skip
    analyze = experiment.command(
        "analyze", help="reports/experiment.json and reports/experiments/<name>.html",
        example="fraud-detection experiment analyze --shares champion=0.9,challenger=0.1",
    )  # fmt: skip
    analyze.add_argument("--input", type=Path, default=None, metavar="FILE",
                         help="labelled predictions (.parquet or .csv, the feedback table's columns); default: "
                              "data/09_feedback/labelled_predictions.parquet")  # fmt: skip
    analyze.add_argument("--shares", default=None, metavar="A=0.9,B=0.1",
                         help="the design shares, the control first; default: params.yaml experiment.shares, "
                              "else serve.ab.variants")  # fmt: skip
    analyze.add_argument("--json", action="store_true", help="print the report as JSON")
    analyze.set_defaults(command=_analyze)
    start = experiment.command(
        "start", help="serve a split (A/B/C) from now on, without a restart",
        example="fraud-detection experiment start ab-2 --shares champion=0.9,challenger=0.1",
    )  # fmt: skip
    start.add_argument("name", help="the experiment's name (its salt unless --salt)")
    start.add_argument("--shares", required=True, metavar="champion=0.9,challenger=0.1",
                       help="registry aliases or versions and their shares, the control first")  # fmt: skip
    start.add_argument("--shadow", default=None, metavar="ALIAS", help="an alias or version scored in shadow")
    start.add_argument("--salt", default=None, help="the assignment hash's salt (default: the name)")
    start.set_defaults(command=_start)
    stop = experiment.command("stop", help="end the split: params.yaml `serve` decides what serves again",
                              example='fraud-detection experiment stop --reason "enough customers"')  # fmt: skip
    stop.add_argument("--reason", default="stopped", help="why (recorded in the history)")
    stop.set_defaults(command=_stop)
    status = experiment.command("status", help="the experiment that decides what serves (a split or a rollout)",
                                example="fraud-detection experiment status")  # fmt: skip
    status.set_defaults(command=_status)


def parse_shares(text: str) -> dict[str, float]:
    """`control=0.9,treatment=0.1` as {variant: share}, in that order."""
    shares: dict[str, float] = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        try:
            shares[name.strip()] = float(value)
        except ValueError:
            raise ExperimentInputError(f"--shares {part!r}: expected VARIANT=SHARE, e.g. control=0.9") from None
        if not name.strip():
            raise ExperimentInputError(f"--shares {part!r}: expected VARIANT=SHARE with a variant name")
    return shares


def read_table(path: Path) -> Any:
    import polars as pl

    if not path.exists():
        raise ExperimentInputError(f"--input {path}: no such file")
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    if path.suffix == ".csv":
        return pl.read_csv(path, try_parse_dates=True)
    raise ExperimentInputError(f"--input {path}: expected a .parquet or .csv file")


def _analyze(args: argparse.Namespace) -> None:
    import polars as pl

    from fraud_detection.experiments.analysis import utc_column
    from fraud_detection.pipelines.experiment.nodes import analyze_experiment

    context = common.opened_context(args)
    params, catalog = context.params, context.catalog
    experiment = params.experiment
    table = read_table(args.input) if args.input else catalog.load("labelled_predictions")
    split = _running_split(args) if args.shares is None and experiment.shares is None and not args.input else None
    if split:  # the split that serves now: its shares, its rows
        experiment = experiment.model_copy(update={"shares": split["variants"], "name": split["name"]})
        if split["started"]:
            since = datetime.fromisoformat(split["started"])
            table = table.with_columns(utc_column(table.schema)).filter(pl.col("tx_datetime") > since)
    if args.shares is not None:
        experiment = experiment.model_copy(update={"shares": parse_shares(args.shares)})
    try:
        report, pages = analyze_experiment(table, experiment, params.serve.ab, params.features.label_delay_days)
    except ValueError as error:
        raise ExperimentInputError(str(error)) from None
    catalog.save("experiment_report", report)
    catalog.save("experiment_pages", pages)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    _print_summary(report, experiment.name)


def _start(args: argparse.Namespace) -> None:
    from fraud_detection.cli.rollout import labelled_predictions
    from fraud_detection.experiments.rollout import latest_served
    from fraud_detection.experiments.split import start_split
    from fraud_detection.registry.registry import default_actor

    data_time = latest_served(labelled_predictions(common.opened_context(args)))
    state = start_split(common.opened_registry(args), args.name, parse_shares(args.shares), args.shadow, args.salt,
                        data_time, default_actor())  # fmt: skip
    shadow = f", shadow {state['shadow']}" if state["shadow"] else ""
    print(f"experiment {state['name']}: serving {state['variants']}{shadow} (versions {state['versions']})")


def _stop(args: argparse.Namespace) -> None:
    from fraud_detection.experiments.split import stop_split
    from fraud_detection.registry.registry import default_actor

    state = stop_split(common.opened_registry(args), default_actor(), args.reason)
    print(f"experiment {state['name']}: stopped; params.yaml serve.ab decides what serves")


def _status(args: argparse.Namespace) -> None:
    state = common.opened_registry(args).experiment()
    print(json.dumps(state, indent=2) if state else "no experiment: params.yaml serve.ab decides what serves")


def _running_split(args: argparse.Namespace) -> dict[str, Any] | None:
    from fraud_detection.experiments.split import SPLIT
    from fraud_detection.registry.registry import RUNNING

    state = common.opened_registry(args).experiment()
    return state if state and state["status"] == RUNNING and state.get("kind") == SPLIT else None


def _print_summary(report: dict[str, Any], name: str) -> None:
    if report.get("status"):
        print(f"experiment {name}: {report['status']}")
    variants = [{"variant": v, **counts} for v, counts in report["variants"].items()]
    common.table(variants, ("variant", "share", "customers", "transactions", "labelled"))
    if report.get("srm"):
        print(f"SRM: p = {report['srm']['p_value']:.3g}{' MISMATCH' if report['srm']['mismatch'] else ''}")
    if report["comparisons"]:
        common.table(report["comparisons"], ("metric", "treatment", "control_value", "treatment_value", "difference",
                                             "ci_low", "ci_high", "sequential_p_value", "significant"))  # fmt: skip
    print(f"wrote reports/experiment.json and reports/experiments/{name}.html")
