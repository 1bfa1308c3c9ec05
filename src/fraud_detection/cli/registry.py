"""`fraud-detection registry ...`: status, gated or forced promotion, rollback, history, import into BentoML."""

from __future__ import annotations

import argparse
import json
from typing import Any

from fraud_detection.cli import common


def add_commands(groups: Any) -> None:
    registry = common.Group(groups, "registry", help="the model registry: status, promote, rollback, history",
                            example="fraud-detection registry status --env production")  # fmt: skip

    status = registry.command("status", help="versions, aliases and key metrics",
                              example="fraud-detection registry status --json")  # fmt: skip
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(command=_status)

    promote = registry.command("promote", help="make VERSION champion if it passes the gate",
                               example='fraud-detection registry promote 3 --reason "beats the champion"')  # fmt: skip
    promote.add_argument("version", help="a version number (3) or name/number (fraud-detector/3)")
    promote.add_argument("--force", action="store_true", help="skip the gate (recorded as forced)")
    promote.add_argument("--reason", default="", help="why (recorded in the history)")
    promote.add_argument("--actor", default=None, help="who (default: user@host)")
    promote.set_defaults(command=_promote)

    rollback = registry.command("rollback", help="champion goes back to the previous champion",
                                example='fraud-detection registry rollback --reason "alert #12"')  # fmt: skip
    rollback.add_argument("--reason", default="manual rollback", help="why (recorded in the history)")
    rollback.add_argument("--actor", default=None, help="who (default: user@host)")
    rollback.set_defaults(command=_rollback)

    history = registry.command("history", help="every alias move",
                               example="fraud-detection registry history --json")  # fmt: skip
    history.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(command=_history)

    bento = registry.command("import-bento", help="import an alias into BentoML's model store",
                             example="fraud-detection registry import-bento --alias challenger")  # fmt: skip
    bento.add_argument("--alias", default="champion", choices=["champion", "challenger"])
    bento.set_defaults(command=_import_bento)


def _status(args: argparse.Namespace) -> None:
    status = common.opened_registry(args).status()
    if args.json:
        print(json.dumps(status, indent=2))
        return
    print(f"{status['model']} at {status['tracking_uri']}: " + _aliases_line(status["aliases"]))
    columns = ("version", "aliases", "created", "gate", "gate_auc_roc", "gate_average_precision",
               "backtest_average_precision", "window", "git_commit")  # fmt: skip
    common.table([{**row, "aliases": ",".join(row["aliases"])} for row in status["versions"]], columns)


def _promote(args: argparse.Namespace) -> None:
    from fraud_detection.registry.promotion import force_promote, promote_gated
    from fraud_detection.registry.registry import default_actor

    registry = common.opened_registry(args)
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
    common.print_events(events)


def _rollback(args: argparse.Namespace) -> None:
    from fraud_detection.registry.registry import default_actor

    event = common.opened_registry(args).rollback(args.actor or default_actor(), args.reason)
    print(f"champion rolled back from version {event.previous} to version {event.version}")
    common.print_events([event])


def _history(args: argparse.Namespace) -> None:
    events = common.opened_registry(args).history()
    if args.json:
        print(json.dumps([e.__dict__ for e in events], indent=2))
        return
    rows = [{**e.__dict__, "move": f"{e.previous or '-'} -> {e.version or '-'}"} for e in events]
    common.table(rows, ("seq", "time", "actor", "action", "alias", "move", "reason"))


def _import_bento(args: argparse.Namespace) -> None:
    from fraud_detection.registry.bento import import_alias

    model = import_alias(common.opened_registry(args), args.alias)
    print(f"{model.tag} in BentoML's model store ({model.path}); labels: {json.dumps(model.info.labels)}")


def _gate(args: argparse.Namespace) -> Any:
    return common.opened_context(args).params.register.gate


def _gate_window(args: argparse.Namespace) -> tuple[Any, str]:
    from fraud_detection.pipelines.register.nodes import gate_window

    project = common.opened_context(args)
    params = project.params
    window = gate_window(project.catalog.load("training_set"), params.train.holdout_days,
                         params.features.label_delay_days)  # fmt: skip
    return window, f"{window['tx_datetime'].min().date()}..{window['tx_datetime'].max().date()}"


def _aliases_line(aliases: dict[str, int]) -> str:
    return ", ".join(f"{alias} = version {v}" for alias, v in sorted(aliases.items())) or "no aliases"
