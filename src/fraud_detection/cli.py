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

`--env production` uses conf/production (the MLflow tracking server). Bad input (an unknown version, another
model's version, an unreachable registry) prints what was wrong and changes nothing (exit status 2); a notebook
whose cell fails prints the cell's error and leaves the previous reports in place (exit status 1).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from typing import Any

import click

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
    logging.getLogger("kedro").setLevel(logging.WARNING)  # stdout is the command's output (`--json | jq`)
    args = _parser().parse_args(argv)
    from fraud_detection.monitoring.actions import ActionFailed
    from fraud_detection.registry.locks import LockTimeout
    from fraud_detection.registry.registry import RegistryError, RegistryUnreachable
    from fraud_detection.reporting.notebooks import NotebookError, NotebookFailed
    from fraud_detection.runtime.project import NotInProject

    try:
        args.command(args)
    except (RegistryError, RegistryUnreachable, LockTimeout, NotInProject, NotebookError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (NotebookFailed, ActionFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fraud-detection", description=__doc__.split("\n\n")[0])
    groups = parser.add_subparsers(required=True, metavar="GROUP")
    registry = groups.add_parser("registry", help="the model registry: status, promote, rollback, history")
    registry.add_argument("--env", default=None, help="Kedro environment (default: base + local; `production`)")
    commands = registry.add_subparsers(required=True, metavar="COMMAND")

    status = commands.add_parser("status", help="versions, aliases and key metrics")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(command=_status)

    promote = commands.add_parser("promote", help="make VERSION champion if it passes the gate")
    promote.add_argument("version", help="a version number (3) or name/number (fraud-detector/3)")
    promote.add_argument("--force", action="store_true", help="skip the gate (recorded as forced)")
    promote.add_argument("--reason", default="", help="why (recorded in the history)")
    promote.add_argument("--actor", default=None, help="who (default: user@host)")
    promote.set_defaults(command=_promote)

    rollback = commands.add_parser("rollback", help="champion goes back to the previous champion")
    rollback.add_argument("--reason", default="manual rollback", help="why (recorded in the history)")
    rollback.add_argument("--actor", default=None, help="who (default: user@host)")
    rollback.set_defaults(command=_rollback)

    history = commands.add_parser("history", help="every alias move")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(command=_history)

    bento = commands.add_parser("import-bento", help="import an alias into BentoML's model store")
    bento.add_argument("--alias", default="champion", choices=["champion", "challenger"])
    bento.set_defaults(command=_import_bento)

    serve = groups.add_parser("serve", help="the real-time service: package it")
    serve.add_argument("--env", default=None, help="Kedro environment (default: base + local; `production`)")
    serve_commands = serve.add_subparsers(required=True, metavar="COMMAND")
    build = serve_commands.add_parser("build", help="`bentoml build` with the serving aliases' models baked in")
    build.set_defaults(command=_build_bento)

    notebook = groups.add_parser("notebook", help="execute a report notebook into reports/notebooks/ (+ HTML)")
    notebook.add_argument("name", help="a notebook of notebooks/, without .ipynb (e.g. data_overview)")
    notebook.set_defaults(command=_notebook)

    monitor = groups.add_parser("monitor", help="act on the monitor stage's decision (retrain, rollback)")
    monitor.add_argument("--env", default=None, help="Kedro environment (default: base + local; `production`)")
    monitor_commands = monitor.add_subparsers(required=True, metavar="COMMAND")
    act = monitor_commands.add_parser("act", help="do what reports/monitoring.json recommends")
    act.set_defaults(command=_monitor_act)
    run = monitor_commands.add_parser("run", help="the monitor stage (forced), then act if monitor.act is true")
    run.set_defaults(command=_monitor_run)
    return parser


# -- commands
def _status(args: argparse.Namespace) -> None:
    status = _registry(args).status()
    if args.json:
        print(json.dumps(status, indent=2))
        return
    print(f"{status['model']} at {status['tracking_uri']}: " + _aliases_line(status["aliases"]))
    columns = ("version", "aliases", "created", "gate", "gate_auc_roc", "gate_average_precision",
               "backtest_average_precision", "window", "git_commit")  # fmt: skip
    _table([{**row, "aliases": ",".join(row["aliases"])} for row in status["versions"]], columns)


def _promote(args: argparse.Namespace) -> None:
    from fraud_detection.registry.promotion import force_promote, promote_gated
    from fraud_detection.registry.registry import default_actor

    registry = _registry(args)
    version = int(registry.version(args.version).version)
    actor = args.actor or default_actor()
    if args.force:
        events = force_promote(registry, version, actor, args.reason or "forced from the CLI")
        print(f"version {version} is champion (forced, gate skipped)")
    else:
        window, span = _gate_window(args)
        decision, champion_before, events = promote_gated(registry, version, window, span, _gate(args), actor)
        if decision.promoted:
            verdict = "is champion"
        elif champion_before == version:
            verdict = "fails the gate; it stays champion (rollback demotes)"
        else:
            verdict = "fails the gate: challenger"
        print(f"version {version} {verdict} (gate window {span}, champion before: {champion_before})")
        for reason in decision.reasons:
            print(f"  - {reason}")
    _print_events(events)


def _rollback(args: argparse.Namespace) -> None:
    from fraud_detection.registry.registry import default_actor

    event = _registry(args).rollback(args.actor or default_actor(), args.reason)
    print(f"champion rolled back from version {event.previous} to version {event.version}")
    _print_events([event])


def _history(args: argparse.Namespace) -> None:
    events = _registry(args).history()
    if args.json:
        print(json.dumps([e.__dict__ for e in events], indent=2))
        return
    rows = [{**e.__dict__, "move": f"{e.previous or '-'} -> {e.version or '-'}"} for e in events]
    _table(rows, ("seq", "time", "actor", "action", "alias", "move", "reason"))


def _import_bento(args: argparse.Namespace) -> None:
    from fraud_detection.registry.bento import import_alias

    model = import_alias(_registry(args), args.alias)
    print(f"{model.tag} in BentoML's model store ({model.path}); labels: {json.dumps(model.info.labels)}")


def _build_bento(args: argparse.Namespace) -> None:
    """Import every alias the service serves (`serve.ab.variants`, `serve.shadow`) into BentoML's model store, then
    build bentofile.yaml with their tags as Bento arguments (the service class makes them its models)."""
    import bentoml

    from fraud_detection.registry.bento import import_alias

    registry, serve = _registry(args), args._context.params["serve"]
    aliases = sorted({*serve["ab"]["variants"], *([serve["shadow"]] if serve.get("shadow") else [])})
    tags = {alias: str(import_alias(registry, alias).tag) for alias in aliases}
    bento = bentoml.bentos.build_bentofile("bentofile.yaml", args=tags)
    print(f"built {bento.tag} with {', '.join(f'{a} = {t}' for a, t in tags.items())} ({bento.path})")


def _notebook(args: argparse.Namespace) -> None:
    """Execute notebooks/NAME.ipynb with params.yaml `notebooks.NAME` (the DVC stage `notebook_NAME`)."""
    from fraud_detection.reporting.notebooks import run_notebook, stage_settings
    from fraud_detection.runtime.project import project_params, project_root

    root = project_root()
    parameters, timeout = stage_settings(args.name, project_params())
    run = run_notebook(args.name, root, parameters, timeout)
    print(f"notebooks/{args.name}.ipynb executed in {run.seconds:.1f} s: "
          f"{run.executed.relative_to(root)}, {run.html.relative_to(root)}")  # fmt: skip


def _monitor_act(args: argparse.Namespace) -> None:
    from fraud_detection.monitoring.actions import act

    registry = _registry(args)  # opens the project's context too
    decision = args._context.catalog.load("monitoring_decision")
    print(f"monitor: {decision['action']} ({'; '.join(decision['reasons'])})")
    done = act(decision, registry)
    if decision["action"] == "rollback":
        print(f"champion rolled back from version {done['was']} to version {done['champion']}")
    for line in done["ran"]:
        print(f"ran: {line}")


def _monitor_run(args: argparse.Namespace) -> None:
    from fraud_detection.monitoring.actions import monitor_again
    from fraud_detection.runtime.project import project_root

    report = project_root() / "reports" / "monitoring.json"
    before = report.stat().st_mtime_ns if report.exists() else None
    monitor_again(stage_ran=lambda: report.exists() and report.stat().st_mtime_ns != before)
    if _context(args.env).params["monitor"]["act"]:
        _monitor_act(args)
    else:
        decision = json.loads(report.read_text())
        print(f"monitor: {decision['action']} ({'; '.join(decision['reasons'])}); monitor.act is false: "
              "`fraud-detection monitor act` acts on it")  # fmt: skip


# -- the project's configuration, read the way `kedro run` reads it
def _context(env: str | None) -> Any:
    from fraud_detection.runtime.project import project_context

    return project_context(env)


def _registry(args: argparse.Namespace) -> Any:
    if not hasattr(args, "_context"):
        args._context = _context(args.env)
    name = args._context.params["register"]["model_name"]
    return args._context.catalog.load("model_registry").open(name)


def _gate(args: argparse.Namespace) -> Any:
    from fraud_detection.registry.gate import GateParams

    return GateParams.from_params(args._context.params["register"]["gate"])


def _gate_window(args: argparse.Namespace) -> tuple[Any, str]:
    from fraud_detection.pipelines.register.nodes import gate_window

    params = args._context.params
    window = gate_window(args._context.catalog.load("training_set"), params["train"], params["features"])
    return window, f"{window['tx_datetime'].min().date()}..{window['tx_datetime'].max().date()}"


# -- output
def _aliases_line(aliases: dict[str, int]) -> str:
    return ", ".join(f"{alias} = version {v}" for alias, v in sorted(aliases.items())) or "no aliases"


def _print_events(events: list) -> None:
    for e in events:
        print(f"  history #{e.seq}: {e.alias} {e.previous or '-'} -> {e.version or '-'} ({e.action} by {e.actor})")


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) if cells else len(c) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    sys.exit(main())
