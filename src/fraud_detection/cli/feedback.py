"""`fraud-detection feedback consume`: the label stream's consumer as its own process (feedback/consumer.py)."""

from __future__ import annotations

import argparse
from typing import Any

from fraud_detection.cli import common


def add_commands(groups: Any) -> None:
    feedback = common.Group(groups, "feedback", help="apply label events to the online store",
                            example="fraud-detection feedback consume --env production --follow 5")  # fmt: skip
    consume = feedback.command("consume", help="apply the label events not yet applied (and new days' rows)",
                               example="fraud-detection feedback consume --follow 5")  # fmt: skip
    consume.add_argument("--follow", type=float, default=None, metavar="SECONDS",
                         help="keep going: look for new served transactions and events every SECONDS")  # fmt: skip
    consume.set_defaults(command=_consume)


def _consume(args: argparse.Namespace) -> None:
    from fraud_detection.feature_store.online import OnlineUpdaterSink
    from fraud_detection.feedback.consumer import run_consumer
    from fraud_detection.feedback.traffic import history_of

    context = common.opened_context(args)
    params, catalog = context.params, context.catalog
    labels = catalog.load("label_stream")
    try:
        run_consumer(history_of(catalog), lambda: catalog.load("prediction_table"), labels,
                     OnlineUpdaterSink(catalog.load("feature_store")), params.features.label_delay_days,
                     params.feedback.consume_batch, args.follow)  # fmt: skip
    except KeyboardInterrupt:
        print("consumer: stopped (what it acknowledged stays applied)")
    finally:
        labels.close()
