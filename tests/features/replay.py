"""Replaying transactions through the online engine in time order, with labels released after the delay."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

import polars as pl

from fraud_detection.features.definitions import MICROS_PER_DAY
from fraud_detection.features.online import OnlineFeatureUpdater

Event = dict[str, Any]


def transaction_events(transactions: pl.DataFrame) -> Iterator[Event]:
    """Transactions as plain events in time order (ties by id), tx_datetime as epoch microseconds."""
    ordered = transactions.sort("tx_datetime", "transaction_id").with_columns(
        pl.col("tx_datetime").dt.epoch("us").alias("tx_us")
    )
    columns = ["transaction_id", "customer_id", "terminal_id", "tx_us", "tx_amount", "tx_fraud"]
    yield from ordered.select(columns).iter_rows(named=True)


def replay(
    transactions: pl.DataFrame,
    updater: OnlineFeatureUpdater,
    on_new_day: Callable[[int, dict, dict], None] | None = None,
    on_transaction: Callable[[Event], None] | None = None,
    after_transaction: Callable[[Event, dict], None] | None = None,
) -> None:
    """Feed every transaction to `updater`: day changes first, then `on_transaction` (score it: the state holds
    only what came before), then the transaction itself. A label reaches the updater once `label_delay_days` have
    passed since its transaction, at the start of the first day after that."""
    delay_us = updater.label_delay_days * MICROS_PER_DAY
    pending: deque[Event] = deque()
    for event in transaction_events(transactions):
        day = event["tx_us"] // MICROS_PER_DAY
        if day != updater.day:
            while pending and pending[0]["tx_us"] + delay_us <= day * MICROS_PER_DAY:
                label = pending.popleft()
                updater.add_label(label["terminal_id"], label["tx_us"], label["tx_fraud"])
            customer_rows, terminal_rows = updater.advance_to(day)
            if on_new_day:
                on_new_day(day, customer_rows, terminal_rows)
        if on_transaction:
            on_transaction(event)
        intraday_row = updater.add_transaction(
            event["customer_id"], event["terminal_id"], event["tx_us"], event["tx_amount"]
        )
        if after_transaction:
            after_transaction(event, intraday_row)
        pending.append(event)
