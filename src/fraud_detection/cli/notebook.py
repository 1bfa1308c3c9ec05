"""`fraud-detection notebook NAME`: a report notebook executed by papermill (the DVC stage `notebook_NAME`)."""

from __future__ import annotations

import argparse
from typing import Any

from fraud_detection.cli import common


def add_commands(groups: Any) -> None:
    notebook = common.add_parser(groups, "notebook", help="execute a report notebook into reports/notebooks/ (+ HTML)",
                                 example="fraud-detection notebook model_evaluation")  # fmt: skip
    notebook.add_argument("name", help="a notebook of notebooks/, without .ipynb (e.g. data_overview)")
    notebook.set_defaults(command=_notebook)


def _notebook(args: argparse.Namespace) -> None:
    """Execute notebooks/NAME.ipynb with params.yaml `notebooks.NAME`."""
    from fraud_detection.reporting.notebooks import run_notebook, stage_settings
    from fraud_detection.runtime.project import project_params, project_root

    root = project_root()
    parameters, timeout = stage_settings(args.name, project_params(root=root).notebooks)
    run = run_notebook(args.name, root, parameters, timeout)
    print(f"notebooks/{args.name}.ipynb executed in {run.seconds:.1f} s: "
          f"{run.executed.relative_to(root)}, {run.html.relative_to(root)}")  # fmt: skip
