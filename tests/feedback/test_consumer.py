"""The label stream's consumer: at least once, idempotent by transaction, and a crash changes nothing in the end."""

from __future__ import annotations

import uuid
from datetime import timedelta

import polars as pl
import pytest

from fraud_detection.features.definitions import EPOCH, MICROS_PER_DAY
from fraud_detection.features.online import updater_from_history
from fraud_detection.feedback.consumer import LabelConsumer, OutcomeApplier
from fraud_detection.feedback.labels import LabelFiles, LabelRedisStream, label_event

DELAY = 7
HISTORY_DAYS = 30


class StoreRows:
    """An online store's final state: the latest row written per (view, entity)."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], dict] = {}

    def new_day(self, day: int, customer_rows: dict, terminal_rows: dict) -> None:
        self.rows.update({("customer_daily", c): dict(row) for c, row in customer_rows.items()})
        self.rows.update({("terminal_daily", k): dict(row) for k, row in terminal_rows.items()})

    def terminals(self, rows: dict[int, tuple[int, dict]]) -> None:
        self.rows.update({("terminal_daily", terminal): dict(row) for terminal, (_, row) in rows.items()})


def _split(transactions: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    start = transactions["tx_datetime"].min().date() + timedelta(days=HISTORY_DAYS)
    start_us = (start - EPOCH.date()).days * MICROS_PER_DAY
    after = transactions.filter(pl.col("tx_datetime").dt.epoch("us") >= start_us)
    return transactions.filter(pl.col("tx_datetime").dt.epoch("us") < start_us), after, start_us // MICROS_PER_DAY


def _label_events(after: pl.DataFrame) -> list[dict]:
    """Every later transaction's label, known at the end of its day (the investigators' pace), in time order, with
    some events repeated (a redelivery)."""
    events = []
    for transaction_id, moment, fraud in after.select("transaction_id", "tx_datetime", "tx_fraud").iter_rows():
        known = EPOCH + timedelta(days=(moment - EPOCH).days + 1)
        events.append(label_event(transaction_id, fraud, known, "investigation"))
    return events + events[:50]


def _play(transactions: pl.DataFrame, stream, crash_after: int | None) -> dict:
    """Apply the later days and the stream's events day by day; with `crash_after`, the first consumer dies after that
    many polls (before acknowledging the last) and a new process (state rebuilt) carries on."""
    history, after, first_day = _split(transactions)
    store = StoreRows()
    events = _label_events(after)
    by_day = {d: [e for e in events if (EPOCH + timedelta(days=d + 1)).isoformat() == e["known_at"]]
              for d in range(first_day, first_day + 15)}  # fmt: skip
    process = _process(history, store, stream)
    polls = 0
    for day, today in after.group_by(pl.col("tx_datetime").dt.date().alias("d"), maintain_order=True):
        number = (day[0] - EPOCH.date()).days
        process["applier"].start_day(number)
        process["applier"].add_transactions(today["transaction_id"].to_list(), today["customer_id"].to_list(),
                                            today["terminal_id"].to_list(),
                                            today["tx_datetime"].dt.epoch("us").to_list(),
                                            today["tx_amount"].to_list())  # fmt: skip
        process["seen"].append(today)
        stream.write(by_day.get(number, []))
        reader = process["consumer"]._reader
        while True:
            batch, receipt = reader.poll(40)
            if not batch:
                break
            process["applier"].apply(batch)
            polls += 1
            if crash_after is not None and polls == crash_after:  # dies before the ack: the batch comes again
                process = _process(history, store, stream, replay=process["seen"], today=number)
                crash_after = None
                break
            reader.ack(receipt)
    return store.rows


def _process(history, store, stream, replay=(), today=None) -> dict:
    """A consumer process: the updater from the history, the days already seen replayed (no writes), its consumer."""
    first_day = history["tx_datetime"].dt.epoch("us").max() // MICROS_PER_DAY + 1
    updater, pending = updater_from_history(history, DELAY, first_day * MICROS_PER_DAY)
    applier = OutcomeApplier(updater, pending, None)
    for seen in replay:
        day = seen["tx_datetime"].dt.epoch("us").min() // MICROS_PER_DAY
        applier.start_day(day)
        applier.add_transactions(seen["transaction_id"].to_list(), seen["customer_id"].to_list(),
                                 seen["terminal_id"].to_list(), seen["tx_datetime"].dt.epoch("us").to_list(),
                                 seen["tx_amount"].to_list())  # fmt: skip
    applier.sink = store
    consumer = LabelConsumer(stream, "online-store", applier, 40)
    return {"applier": applier, "consumer": consumer, "seen": list(replay)}


def test_a_consumer_killed_mid_stream_ends_with_the_same_online_state(transactions, tmp_path) -> None:
    uninterrupted = _play(transactions, LabelFiles(tmp_path / "a" / "labels"), crash_after=None)
    restarted = _play(transactions, LabelFiles(tmp_path / "b" / "labels"), crash_after=7)
    assert restarted == uninterrupted
    frauds = sum(row["terminal_nb_fraud_lagged_30d"] for (view, _), row in uninterrupted.items()
                 if view == "terminal_daily")  # fmt: skip
    assert frauds > 0, "the labels reached the terminals' risk"


def test_labels_apply_once_per_transaction_and_unknown_ones_are_counted(transactions) -> None:
    history, after, first_day = _split(transactions)
    updater, pending = updater_from_history(history, DELAY, first_day * MICROS_PER_DAY)
    applier = OutcomeApplier(updater, pending, StoreRows())
    applier.start_day(first_day)
    today = after.filter(pl.col("tx_datetime").dt.epoch("us") // MICROS_PER_DAY == first_day)
    applier.add_transactions(today["transaction_id"].to_list(), today["customer_id"].to_list(),
                             today["terminal_id"].to_list(), today["tx_datetime"].dt.epoch("us").to_list(),
                             today["tx_amount"].to_list())  # fmt: skip
    fraud = today.filter(pl.col("tx_fraud") == 1).row(0, named=True)
    event = label_event(fraud["transaction_id"], 1, EPOCH + timedelta(days=first_day + 1), "investigation")
    tiles = updater.terminal_tiles[fraud["terminal_id"]]
    before = tiles[first_day][1]
    applier.apply([event, event, label_event(10**12, 0, EPOCH, "delayed")])
    assert tiles[first_day][1] == before + 1
    assert (applier.applied, applier.repeated, applier.unknown) == (1, 1, 1)


@pytest.mark.parametrize("early", [False, True], ids=["delayed labels", "with investigation labels"])
def test_the_history_builds_the_state_a_replay_reaches(transactions, early: bool) -> None:
    """One pass over the history gives the daily rows that replaying it event by event gives, the labels known
    early (investigations) included."""
    from fraud_detection.features.online import OnlineFeatureUpdater
    from tests.features.replay import investigation_labels, replay

    history, _, first_day = _split(transactions)
    events = investigation_labels(transactions) if early else None
    built, pending = updater_from_history(history, DELAY, first_day * MICROS_PER_DAY, events)
    replayed = OnlineFeatureUpdater(DELAY)
    replay(history, replayed, label_events=events, labels_until_us=first_day * MICROS_PER_DAY)
    built_rows, replayed_rows = built.advance_to(first_day), replayed.advance_to(first_day)
    assert _approximately(built_rows) == replayed_rows
    assert pending and all(known_us > first_day * MICROS_PER_DAY for known_us, *_ in pending)
    assert sum(row["terminal_fraud_run_nb_lagged"] > 0 for row in built_rows[1].values()) > 20, "fraud runs too"
    if early:
        assert sum(bool(row["terminal_early_labels_from"]) for row in built_rows[1].values()) > 20


def _approximately(rows: tuple[dict, dict]) -> tuple[dict, dict]:
    """Amount sums compared to 1e-9 (a sum's order changes its last bits), lists and counts as they are."""

    def approximately(row: dict) -> dict:
        return {name: pytest.approx(value, rel=1e-12, abs=1e-9) if isinstance(value, float) else value
                for name, value in row.items()}  # fmt: skip

    return tuple({entity: approximately(row) for entity, row in part.items()} for part in rows)


@pytest.mark.redis
def test_a_consumer_killed_mid_stream_ends_with_the_same_online_state_on_redis(transactions) -> None:
    streams = [f"fraud_detection:test-labels-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    try:
        uninterrupted = _play(transactions, LabelRedisStream("redis://127.0.0.1:6379/0", streams[0]), None)
        restarted = _play(transactions, LabelRedisStream("redis://127.0.0.1:6379/0", streams[1]), crash_after=7)
        assert restarted == uninterrupted
    finally:
        import redis

        client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
        client.delete(*streams)
        client.close()


def test_the_consumer_command_rebuilds_from_the_log_and_ends_as_the_streamed_run(transactions, tmp_path) -> None:
    """`feedback consume` started after the fact (served transactions in the log, every event on the stream, none
    applied), and again after a crash, leaves the store as the consumer that followed the traffic live."""
    from fraud_detection.feedback.consumer import run_consumer

    live = _play(transactions, LabelFiles(tmp_path / "live" / "labels"), crash_after=None)
    history, after, _ = _split(transactions)
    stream = LabelFiles(tmp_path / "later" / "labels")
    stream.write(_label_events(after))
    served = after.with_columns(role=pl.lit("served"))
    store = StoreRows()
    reader = stream.reader("online-store")
    _, receipt = reader.poll(500)
    reader.ack(receipt)  # a first consumer acknowledged 500 events, then died before writing anything else
    run_consumer(history, lambda: served, stream, store, DELAY, 300, progress=lambda line: None)
    assert store.rows == live
