"""Outcomes reach the online store as they arrive: the label stream's consumer, and the day rollover of the store's
daily rows, through the online updater (`features/online.py`).

`OutcomeApplier` holds the updater's state for the transactions after the data's end (the history's part is
built in one pass, `updater_from_history`): each new day it writes every customer's and terminal's daily row; each
transaction served it adds; each label event it applies to its terminal's risk state once (by `transaction_id`:
a redelivered or repeated event changes nothing; an event known before the delay counts at once) and writes the
terminal's row when the label changed it. The history's labels not known at its end (`updater_from_history`:
`label_delay_days` after their transaction, or earlier by an event) are applied by `release` at that moment.

`LabelConsumer` reads the label stream at least once: it applies what it polls, then acknowledges. A consumer that
starts again after a crash first replays into its state what was acknowledged before (without writing: the store
already holds it), then applies the rest, so the store ends as after an uninterrupted run.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import polars as pl

from fraud_detection.features.definitions import MICROS_PER_DAY, epoch_micros
from fraud_detection.features.online import OnlineFeatureUpdater, updater_from_history
from fraud_detection.feedback.labels import LabelReader, LabelStream, events_frame
from fraud_detection.runtime.collector import long_lived_state

CONSUMER_GROUP = "online-store"  # the label stream's consumer group that keeps the online store current


class OutcomeApplier:
    def __init__(self, updater: OnlineFeatureUpdater, pending: Sequence[tuple[int, int, int, int]], sink: Any) -> None:
        self.updater, self.sink = updater, sink
        self._pending = deque(sorted(pending))  # (known_us, terminal_id, tx_us, fraud): the history's, not yet known
        self._seen: dict[int, tuple[int, int]] = {}  # transaction_id -> (terminal_id, tx_us), after the history
        self._labelled: set[int] = set()
        self.applied = self.repeated = self.unknown = 0

    def start_day(self, day: int) -> None:
        """Day `day` starts: the history's labels known by then, then every entity's daily row written."""
        self.release(day * MICROS_PER_DAY)
        customer_rows, terminal_rows = self.updater.advance_to(day)
        if self.sink is not None:
            self.sink.new_day(day, customer_rows, terminal_rows)

    def release(self, now_us: int) -> None:
        """Apply the history's labels known by `now_us`."""
        changed: dict[int, tuple[int, dict]] = {}
        while self._pending and self._pending[0][0] <= now_us:
            known_us, terminal_id, tx_us, fraud = self._pending.popleft()
            row = self.updater.add_label(terminal_id, tx_us, fraud, known_us)
            _note_change(changed, terminal_id, known_us, row)
        self._write(changed)

    def add_transactions(self, ids: Sequence[int], customers: Sequence[int], terminals: Sequence[int],
                         tx_us: Sequence[int], amounts: Sequence[float]) -> None:  # fmt: skip
        """Transactions served today, in time order (their intraday rows are the service's to write)."""
        add, seen = self.updater.add_transaction, self._seen
        for transaction_id, customer, terminal, moment, amount in zip(ids, customers, terminals, tx_us, amounts,
                                                                      strict=True):  # fmt: skip
            add(customer, terminal, moment, amount)
            seen[transaction_id] = (terminal, moment)

    def apply(self, events: Sequence[dict[str, Any]], write: bool = True) -> None:
        """Label events: each transaction's first counts; a label of a transaction not seen is counted and left. The
        terminal rows they changed are written in one store call."""
        changed: dict[int, tuple[int, dict]] = {}
        for event in events:
            transaction_id = event["transaction_id"]
            if transaction_id in self._labelled:
                self.repeated += 1
                continue
            where = self._seen.get(transaction_id)
            if where is None:
                self.unknown += 1
                continue
            self._labelled.add(transaction_id)
            self.applied += 1
            known_us = epoch_micros(datetime.fromisoformat(event["known_at"]))
            row = self.updater.add_label(where[0], where[1], int(event["tx_fraud"]), known_us)
            _note_change(changed, where[0], known_us, row)
        if write:
            self._write(changed)

    def _write(self, changed: dict[int, tuple[int, dict]]) -> None:
        if changed and self.sink is not None:
            self.sink.terminals(changed)


def _note_change(changed: dict[int, tuple[int, dict]], terminal_id: int, known_us: int, row: dict | None) -> None:
    """A terminal's latest row changed by a label, stamped with the latest moment a label changed it."""
    if row is not None:
        changed[terminal_id] = (max(known_us, changed.get(terminal_id, (known_us,))[0]), row)


class LabelConsumer:
    """A label stream reader driving an `OutcomeApplier`, `batch` events at a time. On creation it replays what its
    group acknowledged before into the applier's state (no writes); `consume` applies and acknowledges the rest."""

    def __init__(self, stream: LabelStream, group: str, applier: OutcomeApplier, batch: int) -> None:
        self.applier, self._batch = applier, batch
        self._reader: LabelReader = stream.reader(group)
        applier.apply(list(self._reader.acknowledged()), write=False)

    def consume(self) -> int:
        """Apply every event available now; returns how many were read."""
        read = 0
        while True:
            events, receipt = self._reader.poll(self._batch)
            if not events:
                return read
            self.applier.apply(events)
            self._reader.ack(receipt)
            read += len(events)


def run_consumer(history: pl.DataFrame, served: Callable[[], pl.DataFrame], labels: LabelStream, sink: Any,
                 label_delay_days: int, batch: int, follow_s: float | None = None,
                 progress: Callable[[str], None] = print) -> OutcomeApplier:  # fmt: skip
    """The online updater as its own process (`fraud-detection feedback consume`), for traffic that is not the
    traffic command's: its state rebuilt from the data and the served transactions logged after it (no writes: the
    store holds them), then the label events not yet acknowledged applied and written; with `follow_s`, every
    `follow_s` seconds the newly logged transactions (a new day's first one writes that day's rows) and events."""
    first_day = int(history["tx_datetime"].dt.epoch("us").max()) // MICROS_PER_DAY + 1
    with long_lived_state():
        updater, pending = updater_from_history(history, label_delay_days, first_day * MICROS_PER_DAY,
                                                events_frame(labels.events()))  # fmt: skip
    applier, seen = OutcomeApplier(updater, pending, None), set()
    added = _add_logged(applier, served(), first_day, seen)
    consumer = LabelConsumer(labels, CONSUMER_GROUP, applier, batch)  # replays what was acknowledged, no writes
    applier.sink = sink
    read = consumer.consume()
    if updater.day is not None and sink is not None:  # the day's rows again, with every label applied so far
        sink.new_day(updater.day, *updater.refresh())
    while True:
        counts = f"applied {applier.applied:,}, repeated {applier.repeated:,}, unknown {applier.unknown:,}"
        progress(f"consumer: {added:,} served transactions added, {read:,} label events read ({counts})")
        if follow_s is None:
            return applier
        time.sleep(follow_s)
        added = _add_logged(applier, served(), first_day, seen)
        read = consumer.consume()


def _add_logged(applier: OutcomeApplier, log: pl.DataFrame, first_day: int, seen: set[int]) -> int:
    """The served transactions logged after the data and not added yet, in time order, day by day."""
    new = (
        log.filter((pl.col("role") == "served") & (pl.col("tx_datetime").dt.epoch("us") >= first_day * MICROS_PER_DAY))
        .unique("transaction_id", keep="first")
        .filter(~pl.col("transaction_id").is_in(list(seen)))
        .sort("tx_datetime", "transaction_id")
        .with_columns(tx_us=pl.col("tx_datetime").dt.epoch("us"))
    )
    for (day,), today in new.group_by(pl.col("tx_us") // MICROS_PER_DAY, maintain_order=True):
        if day != applier.updater.day:
            applier.start_day(day)
        columns = ("transaction_id", "customer_id", "terminal_id", "tx_us", "tx_amount")
        applier.release(int(today["tx_us"][0]))
        applier.add_transactions(*(today[name].to_list() for name in columns))
    seen.update(new["transaction_id"].to_list())
    return new.height
