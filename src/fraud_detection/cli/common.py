"""What the command groups share: their parsers (options accepted before or after the command, an example at the
end of every --help), the project's configuration read the way `kedro run` reads it, the registry it names, and
plain-text tables."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

EXAMPLE_HEADING = "Example:"


@dataclass(frozen=True)
class Option:
    """An option of a command group: `add_argument`'s flags and settings."""

    flags: tuple[str, ...]
    settings: dict[str, Any] = field(default_factory=dict)


ENV = Option(("--env",), {"default": None, "help": "Kedro environment (default: base + local; `production`)"})


def example_epilog(command_line: str) -> str:
    """The end of a --help: a real command line, shown as written."""
    return f"{EXAMPLE_HEADING}\n  {command_line}"


def add_parser(parsers: Any, name: str, *, help: str, example: str, **settings: Any) -> argparse.ArgumentParser:
    """A parser of `parsers` (a subparsers action) whose --help ends with `example`."""
    return parsers.add_parser(name, help=help, epilog=example_epilog(example),
                              formatter_class=argparse.RawDescriptionHelpFormatter, **settings)  # fmt: skip


class Group:
    """A command group (`registry`, `traffic`, ...) whose options its commands accept too: `registry --env production
    status` and `registry status --env production` parse the same. The group level holds the defaults; a command's
    copy defaults to SUPPRESS, so it sets the option only when given after the command (and then wins)."""

    def __init__(self, groups: Any, name: str, *, help: str, example: str, options: tuple[Option, ...] = (ENV,)):
        self.parser = add_parser(groups, name, help=help, example=example)
        self._shared = argparse.ArgumentParser(add_help=False)
        for option in options:
            self.parser.add_argument(*option.flags, **option.settings)
            self._shared.add_argument(*option.flags, **{**option.settings, "default": argparse.SUPPRESS})
        self._commands = self.parser.add_subparsers(required=True, metavar="COMMAND")

    def command(self, name: str, *, help: str, example: str) -> argparse.ArgumentParser:
        """A command of the group, accepting the group's options after its name."""
        return add_parser(self._commands, name, help=help, example=example, parents=[self._shared])


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
