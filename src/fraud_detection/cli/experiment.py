"""`fraud-detection experiment analyze`: the experiment stage's analysis from the command line, on the feedback
stage's labelled predictions or a file of the same columns, with the design from params.yaml or `--shares`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fraud_detection.cli import common


class ExperimentInputError(ValueError):
    """Bad input to the analysis: the message names the field, the value and what was expected."""


def add_commands(groups: Any) -> None:
    experiment = groups.add_parser("experiment", help="A/B experiments: the variants compared on their outcomes")
    experiment.add_argument("--env", default=None, help="Kedro environment (default: base + local; `production`)")
    commands = experiment.add_subparsers(required=True, metavar="COMMAND")
    analyze = commands.add_parser("analyze", help="reports/experiment.json and reports/experiments/<name>.html")
    analyze.add_argument("--input", type=Path, default=None, metavar="FILE",
                         help="labelled predictions (.parquet or .csv, the feedback table's columns); default: "
                              "data/09_feedback/labelled_predictions.parquet")  # fmt: skip
    analyze.add_argument("--shares", default=None, metavar="A=0.9,B=0.1",
                         help="the design shares, the control first; default: params.yaml experiment.shares, "
                              "else serve.ab.variants")  # fmt: skip
    analyze.add_argument("--json", action="store_true", help="print the report as JSON")
    analyze.set_defaults(command=_analyze)


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
    from fraud_detection.pipelines.experiment.nodes import analyze_experiment

    context = common.opened_context(args)
    params, catalog = context.params, context.catalog
    experiment = params.experiment
    if args.shares is not None:
        experiment = experiment.model_copy(update={"shares": parse_shares(args.shares)})
    table = read_table(args.input) if args.input else catalog.load("labelled_predictions")
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
