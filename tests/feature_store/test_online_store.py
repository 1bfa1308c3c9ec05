"""The online store as serving and the stream updater use it: faults surface as one typed error, and
materialization and replays are idempotent and incremental."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from fraud_detection.feature_store import dataset
from fraud_detection.feature_store import online as online_module
from fraud_detection.feature_store.dataset import apply_and_materialize, repo_config
from fraud_detection.feature_store.definitions import PUSH_SOURCES
from fraud_detection.feature_store.online import OnlineFeatures, OnlineStoreUnavailable, OnlineUpdaterSink
from fraud_detection.features.definitions import (
    CUSTOMER_DAILY,
    CUSTOMER_INTRADAY,
    EPOCH,
    INTRADAY_STATE,
    TERMINAL_DAILY,
)
from fraud_detection.features.online import OnlineFeatureUpdater
from tests.feature_store.conftest import LABEL_DELAY_DAYS, open_store
from tests.features.replay import replay

END = datetime(2018, 5, 10, tzinfo=UTC)
MOMENT = datetime(2018, 5, 10, 12, tzinfo=UTC)


def _online_state(store, customers: range, terminals: range) -> dict:
    """Every stored value of the given entities, as the online store returns them."""
    customer_refs = [f"customer_daily:{n}" for n in CUSTOMER_DAILY] + [f"customer_intraday:{INTRADAY_STATE}"]
    terminal_refs = [f"terminal_daily:{n}" for n in TERMINAL_DAILY]
    return {
        "customers": store.get_online_features(customer_refs, [{"customer_id": c} for c in customers]).to_dict(),
        "terminals": store.get_online_features(terminal_refs, [{"terminal_id": t} for t in terminals]).to_dict(),
    }


def _frame(view: str, rows: list) -> pd.DataFrame:
    """The sink's (entity id, event time in epoch microseconds, values) rows as the DataFrame Feast's push takes."""
    key = "terminal_id" if view == "terminal_daily" else "customer_id"
    return pd.DataFrame([{key: entity, "event_timestamp": EPOCH + timedelta(microseconds=event_us), **values}
                         for entity, event_us, values in rows])  # fmt: skip


def test_materialize_twice_leaves_the_same_state(store) -> None:
    apply_and_materialize(store, END)
    before = _online_state(store, range(300), range(600))
    apply_and_materialize(store, END)
    assert _online_state(store, range(300), range(600)) == before
    assert before["customers"]["customer_nb_tx_prev_30d"].count(None) < 300, "values were materialized"


def test_materialize_is_incremental(store) -> None:
    apply_and_materialize(store, END)
    apply_and_materialize(store, datetime(2018, 5, 12, tzinfo=UTC))
    intervals = store.get_feature_view("customer_daily").materialization_intervals
    assert [(start.date().isoformat(), end.date().isoformat()) for start, end in intervals] == [
        ("2018-05-09", "2018-05-10"),
        ("2018-05-10", "2018-05-12"),
    ]


def test_replaying_twice_leaves_the_same_state(store, transactions) -> None:
    apply_and_materialize(store, END)
    window = transactions.filter(transactions["tx_datetime"] < datetime(2018, 5, 11, tzinfo=UTC))

    def replay_into_store() -> dict:
        sink = OnlineUpdaterSink(store)
        replay(
            window,
            OnlineFeatureUpdater(LABEL_DELAY_DAYS),
            on_new_day=lambda day, c, t: sink.new_day(day, c, t) if day >= END.timestamp() // 86_400 else None,
            after_transaction=lambda e, row: (
                sink.transaction(e["customer_id"], e["tx_us"], row)
                if e["tx_us"] >= int(END.timestamp()) * 1_000_000
                else None
            ),
        )
        return _online_state(store, range(300), range(600))

    assert replay_into_store() == replay_into_store()


def test_a_missing_sqlite_file_is_a_typed_error(sqlite_store) -> None:
    store = sqlite_store
    apply_and_materialize(store, END)
    Path(store.config.online_store.path).unlink()
    online = OnlineFeatures(store, "fraud_model_v1")
    with pytest.raises(OnlineStoreUnavailable, match=r"online\.db is missing"):
        online.vector(1, 1, MOMENT, 10.0)
    with pytest.raises(OnlineStoreUnavailable, match=r"online\.db is missing"):
        OnlineUpdaterSink(store).transaction(1, 0, dict.fromkeys(CUSTOMER_INTRADAY, 0))


def test_a_new_day_writes_only_the_values_that_changed(store) -> None:
    """Online reads take each value's latest row whatever its age, so a day's rollover writes only what differs
    from the row written before; the store then answers the whole new row."""
    apply_and_materialize(store, END)
    sink, written = OnlineUpdaterSink(store), []
    write = sink.write
    sink.write = lambda view, rows: (written.append(rows), write(view, rows))
    day = int(END.timestamp()) // 86_400
    first = {name: 3 if "nb_tx" in name else 10.0 for name in CUSTOMER_DAILY}
    second = first | {"customer_amount_prev_30d": 12.5}
    sink.new_day(day, {99_999: first}, {})
    sink.new_day(day + 1, {99_999: second}, {})
    sink.new_day(day + 2, {99_999: second}, {})
    assert [len(rows[0][2]) for rows in written] == [len(CUSTOMER_DAILY), 1], "then nothing: nothing changed"
    [row] = OnlineFeatures(store, "fraud_model_v1").read({"customer_daily": [99_999]})["customer_daily"]
    assert row == second


def test_a_locked_sqlite_file_is_a_typed_error(sqlite_store) -> None:
    store = sqlite_store
    apply_and_materialize(store, END)
    sink = OnlineUpdaterSink(store)
    lock = sqlite3.connect(store.config.online_store.path, timeout=0)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(OnlineStoreUnavailable, match="unwritable"):
            sink.transaction(1, int(MOMENT.timestamp()) * 1_000_000, dict.fromkeys(CUSTOMER_INTRADAY, 0))
    finally:
        lock.rollback()
        lock.close()


@pytest.mark.redis
def test_redis_down_is_a_typed_error(feature_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(feature_root)
    healthy = open_store(feature_root, "sqlite")
    apply_and_materialize(healthy, END)
    dead_redis = {"type": "redis", "connection_string": "127.0.0.1:6399,db=0"}  # nothing listens there
    config = repo_config(
        healthy.config.registry.path, dead_redis, {"type": "duckdb"}, str(feature_root), healthy.config.project
    )
    down = dataset.open_store(config)
    online = OnlineFeatures(down, "fraud_model_v1")
    with pytest.raises(OnlineStoreUnavailable):
        online.vector(1, 1, MOMENT, 10.0)


@pytest.mark.slow  # the push path costs about 10 ms a row
@pytest.mark.parametrize("online", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def test_the_sink_writes_what_feasts_push_sources_write(
    feature_root: Path, monkeypatch: pytest.MonkeyPatch, transactions, online: str
) -> None:
    """OnlineUpdaterSink skips the push path's registry lookups and, on SQLite, Feast's row-by-row writer, and a new
    day writes only the values that changed; the online state it leaves is the same as `store.push(<view>_push,
    rows)` of every whole row leaves."""
    monkeypatch.chdir(feature_root)
    window = transactions.filter(transactions["tx_datetime"] < datetime(2018, 4, 4, tzinfo=UTC))
    states = []
    for writer in ("sink", "push"):
        store = open_store(feature_root, online)
        apply_and_materialize(store, datetime(2018, 4, 1, tzinfo=UTC))
        sink = OnlineUpdaterSink(store)
        if writer == "push":
            monkeypatch.setattr(online_module, "_changed", lambda row, written: row)  # whole rows, as push takes
            monkeypatch.setattr(
                sink, "write", lambda view, rows, s=store: s.push(PUSH_SOURCES[view], _frame(view, rows))
            )
        replay(
            window,
            OnlineFeatureUpdater(LABEL_DELAY_DAYS),
            on_new_day=sink.new_day,
            after_transaction=lambda e, row, s=sink: s.transaction(e["customer_id"], e["tx_us"], row),
        )
        states.append(_online_state(store, range(300), range(600)))
        if online == "redis":
            store.teardown()
    assert states[0] == states[1]
