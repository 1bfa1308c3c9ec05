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
    on_terminal_row: Callable[[int, int, dict], None] | None = None,
) -> None:
    """Feed every transaction to `updater`: day changes first, then `on_transaction` (score it: the state holds
    only what came before), then the transaction itself. A label reaches the updater as soon as `label_delay_days`
    have passed since its transaction (before the first transaction at or after that moment, and before a new day
    starts); a label that changes today's terminal row goes to `on_terminal_row` (terminal id, the moment the label
    became known in epoch microseconds, row)."""
    delay_us = updater.label_delay_days * MICROS_PER_DAY
    pending: deque[Event] = deque()

    def release(now_us: int) -> None:
        while pending and pending[0]["tx_us"] + delay_us <= now_us:
            label = pending.popleft()
            row = updater.add_label(label["terminal_id"], label["tx_us"], label["tx_fraud"])
            if row is not None and on_terminal_row:
                on_terminal_row(label["terminal_id"], label["tx_us"] + delay_us, row)

    for event in transaction_events(transactions):
        day = event["tx_us"] // MICROS_PER_DAY
        if day != updater.day:
            release(day * MICROS_PER_DAY)
            customer_rows, terminal_rows = updater.advance_to(day)
            if on_new_day:
                on_new_day(day, customer_rows, terminal_rows)
        release(event["tx_us"])
        if on_transaction:
            on_transaction(event)
        intraday_row = updater.add_transaction(
            event["customer_id"], event["terminal_id"], event["tx_us"], event["tx_amount"]
        )
        if after_transaction:
            after_transaction(event, intraday_row)
        pending.append(event)
