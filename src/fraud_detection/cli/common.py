"""What the command groups share: the project's configuration read the way `kedro run` reads it, the registry it
names, and plain-text tables."""

from __future__ import annotations

import argparse
from typing import Any


def context(env: str | None) -> Any:
    """The project's params and catalog (conf/base, overlaid by conf/<env>)."""
    from fraud_detection.runtime.project import project_context

    return project_context(env)


def opened_context(args: argparse.Namespace) -> Any:
    """The context of this command line, read once."""
    if not hasattr(args, "_context"):
        args._context = context(args.env)
    return args._context


def opened_registry(args: argparse.Namespace) -> Any:
    """The registered model params.yaml `register.model_name` names, in the catalog's registry."""
    project = opened_context(args)
    return project.catalog.load("model_registry").open(project.params.register.model_name)


def print_events(events: list) -> None:
    for e in events:
        print(f"  history #{e.seq}: {e.alias} {e.previous or '-'} -> {e.version or '-'} ({e.action} by {e.actor})")


def table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
