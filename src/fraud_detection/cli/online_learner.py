"""`fraud-detection online-learner run|status`: the online learner on the label stream (online/runner.py)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from fraud_detection.cli import common


def add_commands(groups: Any) -> None:
    learner = common.Group(groups, "online-learner", help="keep a copy of the champion learning from the label stream",
                           example="fraud-detection online-learner status --env production")  # fmt: skip
    run = learner.command("run", help="learn the label events not yet learned; publish updates as `online`",
                          example="fraud-detection online-learner run --follow 5")  # fmt: skip
    run.add_argument("--follow", type=float, default=None, metavar="SECONDS",
                     help="keep going: look for new label events every SECONDS")  # fmt: skip
    run.set_defaults(command=_run)
    status = learner.command("status", help="checkpoint, lag behind the stream, held-back examples, validation",
                             example="fraud-detection online-learner status --json")  # fmt: skip
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(command=_status)


def _run(args: argparse.Namespace) -> None:
    from fraud_detection.online.runner import LiveLearner, Served
    from fraud_detection.registry.registry import default_actor

    context = common.opened_context(args)
    catalog = context.catalog
    candidate = catalog.to_config()[0]["candidate"]  # the trained candidates' experiment: checkpoints are logged there
    labels = catalog.load("label_stream")
    learner = LiveLearner(common.opened_registry(args), labels, Served(lambda: catalog.load("prediction_records")),
                          context.params.online, lambda status: catalog.save("online_learner_status", status),
                          f"online learner ({default_actor()})",
                          (candidate["experiment"], candidate.get("artifact_location")))  # fmt: skip
    try:
        learner.run(args.follow)
    except KeyboardInterrupt:
        print("online learner: stopped (what it acknowledged stays learned)")
    finally:
        labels.close()
    _print(learner.status())


def _status(args: argparse.Namespace) -> None:
    from fraud_detection.online.runner import GROUP, stream_lag

    context = common.opened_context(args)
    catalog = context.catalog
    saved = catalog.load("online_learner_status") if catalog.exists("online_learner_status") else {}
    labels = catalog.load("label_stream")
    try:
        lag = stream_lag(labels, labels.reader(GROUP))
    finally:
        labels.close()
    registry = common.opened_registry(args)
    status = {**saved, "lag_events": lag, "online_version": registry.alias_version("online"),
              "champion_version": registry.alias_version("champion")}  # fmt: skip
    if args.json:
        print(json.dumps(status, indent=1, sort_keys=True))
    else:
        _print(status)


def _print(status: dict[str, Any]) -> None:
    if not status.get("updates") and "lag_events" not in status:
        print("online learner: nothing learned yet")
    for key in ("online_version", "champion_version", "checkpoint", "lag_events", "events", "examples_learned",
                "examples_held_out", "held_back", "not_served", "repeated", "updates", "updates_published",
                "updates_rolled_back", "updates_rejected", "resets", "last_validation", "at"):  # fmt: skip
        if key in status:
            print(f"  {key}: {status[key]}")
