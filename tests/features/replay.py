"""Replaying transactions through the online engine in time order, each label released when it becomes known:
`label_delay_days` after its transaction, or earlier when a label event says so (an investigation)."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from fraud_detection.features.definitions import MICROS_PER_DAY
from fraud_detection.features.online import OnlineFeatureUpdater
from fraud_detection.feedback.labels import events_frame, label_event

Event = dict[str, Any]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def transaction_events(transactions: pl.DataFrame) -> Iterator[Event]:
    """Transactions as plain events in time order (ties by id), tx_datetime as epoch microseconds."""
    ordered = transactions.sort("tx_datetime", "transaction_id").with_columns(
        pl.col("tx_datetime").dt.epoch("us").alias("tx_us")
    )
    columns = ["transaction_id", "customer_id", "terminal_id", "tx_us", "tx_amount", "tx_fraud"]
    yield from ordered.select(columns).iter_rows(named=True)


def investigation_labels(transactions: pl.DataFrame, cards_per_day: int = 8, lookback_days: int = 7) -> pl.DataFrame:
    """Label events known before the delay, as the traffic command's investigators publish them, plus some known
    mid-day: each day, the cards with a fraud that day and a few others (at most `cards_per_day`, by id) have their
    transactions of the last `lookback_days` days labelled at the day's end; and every 7th fraud not investigated is
    reported 5 hours after it (a customer's call: mid-day, or across midnight). One event per transaction."""
    tx = transactions.with_columns(day=pl.col("tx_datetime").dt.epoch("us") // MICROS_PER_DAY)
    events, labelled = [], set()
    for (day,), today in tx.group_by("day", maintain_order=True):
        frauds = today.filter(pl.col("tx_fraud") == 1)["customer_id"].unique().sort().to_list()
        others = today.filter(pl.col("customer_id") % 37 == day % 37)["customer_id"].unique().sort().to_list()
        cards = (frauds + others)[:cards_per_day]
        window = tx.filter(pl.col("day").is_between(day - lookback_days + 1, day) & pl.col("customer_id").is_in(cards))
        known_at = EPOCH + timedelta(microseconds=(day + 1) * MICROS_PER_DAY)
        for transaction_id, fraud in window.sort("transaction_id").select("transaction_id", "tx_fraud").iter_rows():
            if transaction_id not in labelled:
                labelled.add(transaction_id)
                events.append(label_event(transaction_id, fraud, known_at, "investigation"))
    reported = tx.filter((pl.col("tx_fraud") == 1) & (pl.col("transaction_id") % 7 == 0))
    for transaction_id, moment in reported.select("transaction_id", "tx_datetime").iter_rows():
        if transaction_id not in labelled:
            events.append(label_event(transaction_id, 1, moment + timedelta(hours=5), "investigation"))
    return events_frame(events)


def replay(
    transactions: pl.DataFrame,
    updater: OnlineFeatureUpdater,
    on_new_day: Callable[[int, dict, dict], None] | None = None,
    on_transaction: Callable[[Event], None] | None = None,
    after_transaction: Callable[[Event, dict], None] | None = None,
    on_terminal_row: Callable[[int, int, dict], None] | None = None,
    label_events: pl.DataFrame | None = None,
    labels_until_us: int | None = None,
) -> None:
    """Feed every transaction to `updater`: day changes first, then `on_transaction` (score it: the state holds
    only what came before), then the transaction itself. A label reaches the updater as soon as it is known
    (`label_delay_days` after its transaction, or at its first event of `label_events` when earlier): before the
    first transaction at or after that moment, and before a new day starts; a label that changes today's terminal
    row goes to `on_terminal_row` (terminal id, the moment the label became known in epoch microseconds, row).
    With `labels_until_us`, the labels known by then are released after the last transaction too."""
    delay_us = updater.label_delay_days * MICROS_PER_DAY
    early: dict[int, int] = {}
    if label_events is not None and not label_events.is_empty():
        first = label_events.group_by("transaction_id").agg(pl.col("known_at").min().dt.epoch("us"))
        early = dict(first.iter_rows())
    pending: list[tuple[int, int, Event]] = []  # (known_us, transaction_id, transaction)

    def release(now_us: int) -> None:
        while pending and pending[0][0] <= now_us:
            known_us, _, label = heapq.heappop(pending)
            row = updater.add_label(label["terminal_id"], label["tx_us"], label["tx_fraud"], known_us)
            if row is not None and on_terminal_row:
                on_terminal_row(label["terminal_id"], known_us, row)

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
        known_us = min(max(early.get(event["transaction_id"], event["tx_us"] + delay_us), event["tx_us"]),
                       event["tx_us"] + delay_us)  # fmt: skip
        heapq.heappush(pending, (known_us, event["transaction_id"], event))
    if labels_until_us is not None:
        release(labels_until_us)
