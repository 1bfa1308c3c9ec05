"""The serving path's own SQLite reads and writes in Feast's format: the bytes written are Feast's, and the daily
views a reader keeps in process follow every write to the store, whoever writes."""

from __future__ import annotations

import math
import random
import sqlite3
from datetime import UTC, datetime, timedelta

import pandas as pd
from feast.protos.feast.types.Value_pb2 import Value

from fraud_detection.feature_store import feast_adapter
from fraud_detection.feature_store.dataset import apply_and_materialize
from fraud_detection.feature_store.definitions import PUSH_SOURCES
from fraud_detection.feature_store.feast_adapter import (
    TRIGGER_EVENTS,
    decoded_value,
    encoded_value,
    prepare_sqlite,
    table_names,
)
from fraud_detection.feature_store.online import DAILY_VIEWS, OnlineFeatures, OnlineUpdaterSink
from fraud_detection.features.definitions import (
    CUSTOMER_DAILY,
    INTRADAY_STATE,
    LIST_STATE,
    TERMINAL_DAILY,
    epoch_micros,
    pack_intraday,
)
from tests.feature_store.conftest import open_store

END = datetime(2018, 5, 10, tzinfo=UTC)
CUSTOMERS, TERMINALS = list(range(0, 300, 7)), list(range(0, 600, 11))


def test_values_encode_to_the_bytes_protobuf_writes_and_decode_back() -> None:
    rng = random.Random(0)
    integers = [0, 1, -1, 127, 128, 300, 2**31, -(2**63), 2**63 - 1, 1_525_910_400_000_000]
    integers += [rng.randint(-(2**63), 2**63 - 1) for _ in range(2_000)] + [rng.randint(0, 500) for _ in range(500)]
    for number in integers:
        blob, text = encoded_value("int64_val", number)
        assert (blob, text) == (Value(int64_val=number).SerializeToString(), str(number))
        assert decoded_value("int64_val", blob) == number
    doubles = [0.0, -0.0, 1.5, 1e-310, 1.7976931348623157e308, float("inf"), float("-inf")]
    doubles += [rng.uniform(-1e6, 1e6) for _ in range(2_000)]
    for number in doubles:
        blob, text = encoded_value("double_val", number)
        assert (blob, text) == (Value(double_val=number).SerializeToString(), str(number))
        decoded = decoded_value("double_val", blob)
        assert decoded == number and math.copysign(1.0, decoded) == math.copysign(1.0, number)
    nan = encoded_value("double_val", float("nan"))[0]
    assert nan == Value(double_val=float("nan")).SerializeToString() and math.isnan(decoded_value("double_val", nan))
    assert encoded_value("int64_val", None) == (Value().SerializeToString(), None)
    assert decoded_value("int64_val", b"") is None
    assert decoded_value("int64_val", Value(double_val=2.5).SerializeToString()) == 2.5, "another shape: protobuf"
    lists = [[1.0], [0.0, -0.0, 2.5, 1e300, 1_525_910_400_000_017.0], [float(i) for i in range(15)]]
    lists += [[rng.uniform(-1e6, 1e6) for _ in range(n)] for n in (5, 16, 40)] + [[]]
    for values in lists:
        blob, text = encoded_value("double_list_val", values)
        assert (blob, text) == (Value(double_list_val={"val": values}).SerializeToString(), None)
        assert decoded_value("double_list_val", blob) == values


def test_event_times_are_stored_as_feasts_datetime_adapter_stores_them(monkeypatch) -> None:
    from feast.infra.online_stores.sqlite import adapt_datetime_epoch
    from feast.utils import to_naive_utc

    rng = random.Random(1)
    moments = [END, END + timedelta(microseconds=999_999), END - timedelta(microseconds=1), END.replace(year=1970)]
    moments += [END + timedelta(microseconds=rng.randrange(10**14)) for _ in range(1_000)]
    for local_time_is_utc in (True, False):  # the fast path, and Feast's own conversion wherever local time is not UTC
        monkeypatch.setattr(feast_adapter, "LOCAL_TIME_IS_UTC", local_time_is_utc)
        for moment in moments:
            assert feast_adapter.feast_event_ts(epoch_micros(moment)) == adapt_datetime_epoch(to_naive_utc(moment))


def _rows(store, view: str) -> list[tuple]:
    [table] = table_names(store, [store.get_feature_view(view)]).values()
    with sqlite3.connect(store.config.online_store.path) as connection:
        return connection.execute(f'SELECT * FROM "{table}" ORDER BY entity_key, feature_name').fetchall()


def test_the_writer_leaves_the_rows_feasts_own_writer_leaves(feature_root, monkeypatch) -> None:
    """Row for row, column for column (value proto, value_text, event_ts, created_ts)."""
    monkeypatch.chdir(feature_root)
    stamp = END + timedelta(hours=9, microseconds=17)
    rows = {c: {"customer_today_nb_tx_before": c % 3, "customer_today_amount_before": c * 1.25 + 0.1,
                "customer_today_amount_sq_before": c * 4.5 + 0.01, "customer_today_nb_tx_at": 1,
                "customer_today_amount_at": 3.3, "customer_today_amount_sq_at": 3.3 * 3.3,
                "customer_today_last_tx_us": epoch_micros(stamp)}
            for c in CUSTOMERS}  # fmt: skip
    ours, feasts = open_store(feature_root, "sqlite"), open_store(feature_root, "sqlite")
    for store in (ours, feasts):
        apply_and_materialize(store, END)
    OnlineUpdaterSink(ours).intraday(rows)
    feasts.write_to_online_store("customer_intraday", pd.DataFrame(
        [{"customer_id": c, "event_timestamp": stamp, INTRADAY_STATE: pack_intraday(row)}
         for c, row in rows.items()]))  # fmt: skip
    assert _rows(ours, "customer_intraday") == _rows(feasts, "customer_intraday")
    assert {len(row) for row in _rows(ours, "customer_intraday")} == {7}, "one row a customer"
    back = OnlineFeatures(ours, "fraud_model_v1").read({"customer_intraday": CUSTOMERS})
    assert back["customer_intraday"] == list(rows.values()), "read back as the seven values, exactly"


def test_rows_of_features_a_view_no_longer_has_are_deleted_at_apply(feature_root, monkeypatch) -> None:
    """The intraday view once held five features: a store from then keeps their rows, until the next apply."""
    monkeypatch.chdir(feature_root)
    store = open_store(feature_root, "sqlite")
    apply_and_materialize(store, END)
    [table] = table_names(store, [store.get_feature_view("customer_intraday")]).values()
    with sqlite3.connect(store.config.online_store.path) as connection:
        connection.execute(f'INSERT INTO "{table}" (entity_key, feature_name, value) '
                           f"SELECT entity_key, 'customer_today_nb_tx_at', value FROM \"{table}\"")  # fmt: skip
    apply_and_materialize(store, END)
    assert {row[1] for row in _rows(store, "customer_intraday")} == {INTRADAY_STATE}


def _reader(store, cache_entries: int = 10_000):
    online = OnlineFeatures(store, "fraud_model_v1", DAILY_VIEWS, cache_entries)
    queries: list[str] = []
    online._reader._connect().set_trace_callback(queries.append)
    return online, queries


def _read(online) -> dict:
    return online.read({"customer_daily": CUSTOMERS, "customer_intraday": CUSTOMERS, "terminal_daily": TERMINALS})


def _daily_queries(queries: list[str]) -> list[str]:
    """The reads of the daily views' tables (the change counters' query names them too, as trigger names)."""
    return [q for q in queries if '_customer_daily" WHERE' in q or '_terminal_daily" WHERE' in q]


def _push_daily(store, view: str, entities: list[int], moment: datetime, value: float) -> None:
    """New daily rows through Feast's own push path (not ours): `value` in every feature."""
    key, names = ("customer_id", CUSTOMER_DAILY) if view == "customer_daily" else ("terminal_id", TERMINAL_DAILY)
    values = {name: [] if name in LIST_STATE else value for name in names}  # event lists: none
    frame = pd.DataFrame([{key: e, "event_timestamp": moment, **values} for e in entities])
    for name in names:
        if "nb_" in name:
            frame[name] = frame[name].astype("int64")
    store.push(PUSH_SOURCES[view], frame)


def test_cached_daily_rows_are_read_once_and_follow_every_write(sqlite_store) -> None:
    store = sqlite_store
    apply_and_materialize(store, END)
    online, queries = _reader(store)
    first = _read(online)
    assert _daily_queries(queries), "the first read goes to the store"
    queries.clear()
    assert _read(online) == first
    assert not _daily_queries(queries), "unchanged daily views are served from the process"
    assert any('_customer_intraday" WHERE' in q for q in queries), "the intraday view is read every time"

    queries.clear()
    _push_daily(store, "terminal_daily", TERMINALS[:3], END + timedelta(days=1), 7.0)  # Feast's writer, not ours
    after_push = _read(online)
    assert [after_push["terminal_daily"][i]["terminal_nb_tx_lagged_7d"] for i in range(3)] == [7, 7, 7]
    assert after_push["customer_daily"] == first["customer_daily"]
    read_again = " ".join(_daily_queries(queries))
    assert '_terminal_daily" WHERE' in read_again, "the changed view is read from the store again"
    assert '_customer_daily" WHERE' not in read_again, "the unchanged view stays cached"

    queries.clear()
    apply_and_materialize(store, END + timedelta(days=2))  # a later day materialized
    fresh = OnlineFeatures(store, "fraud_model_v1")  # no cache: the reference
    assert _read(online) == _read(fresh)
    assert _read(online)["customer_daily"] != first["customer_daily"], "the materialization changed the values"


def _sink_daily(store, view: str, entities: list[int], moment: datetime, value: float) -> None:
    """New daily rows through our own writer (the online updater's sink): `value` in every number feature."""
    names = CUSTOMER_DAILY if view == "customer_daily" else TERMINAL_DAILY
    row = {name: [] if name in LIST_STATE else (int(value) if "nb_" in name else value) for name in names}
    OnlineUpdaterSink(store).write(view, [(e, epoch_micros(moment), row) for e in entities])


def _daily_entities(queries: list[str], view: str) -> int:
    """How many entities the reads of a daily view's table asked for."""
    parts = [part for q in queries for part in q.split(" UNION ALL ")]
    return sum(part.count("x'") for part in parts if f'_{view}" WHERE' in part)


def test_our_writer_drops_only_the_entities_it_wrote_from_a_cache(sqlite_store) -> None:
    store = sqlite_store
    apply_and_materialize(store, END)
    online, queries = _reader(store)
    first = _read(online)
    queries.clear()
    _sink_daily(store, "terminal_daily", TERMINALS[:2], END + timedelta(days=1), 5.0)
    after = _read(online)
    assert after == _read(OnlineFeatures(store, "fraud_model_v1")), "as the store holds it"
    assert [row["terminal_nb_tx_lagged_7d"] for row in after["terminal_daily"][:3]] == [5, 5,
        first["terminal_daily"][2]["terminal_nb_tx_lagged_7d"]]  # fmt: skip
    assert _daily_entities(queries, "terminal_daily") == 2, "only the two terminals written are read again"
    assert _daily_entities(queries, "customer_daily") == 0

    queries.clear()
    _sink_daily(store, "customer_daily", CUSTOMERS[:1], END + timedelta(days=1), 3.0)
    _push_daily(store, "customer_daily", CUSTOMERS[1:2], END + timedelta(days=1), 4.0)  # Feast's writer
    after = _read(online)
    assert after == _read(OnlineFeatures(store, "fraud_model_v1"))
    assert _daily_entities(queries, "customer_daily") == len(CUSTOMERS), "another writer: the whole view again"
    assert _daily_entities(queries, "terminal_daily") == 0


def test_a_value_written_again_unchanged_keeps_its_row(sqlite_store) -> None:
    """An online read takes each value's latest row whatever its age: an unchanged value is not rewritten (no page
    written, its event time kept), a changed one is."""
    store = sqlite_store
    apply_and_materialize(store, END)
    first, later = END + timedelta(days=1), END + timedelta(days=2)
    _sink_daily(store, "terminal_daily", TERMINALS[:2], first, 5.0)
    before = _values_and_times(store)
    row = {"terminal_nb_tx_lagged_7d": 5, "terminal_nb_tx_lagged_1d": 6}
    OnlineUpdaterSink(store).write("terminal_daily", [(t, epoch_micros(later), row) for t in TERMINALS[:2]])
    after = _values_and_times(store)
    changed = {key_name for key_name in after if after[key_name] != before[key_name]}
    assert {name for _, name in changed} == {"terminal_nb_tx_lagged_1d"} and len(changed) == 2
    assert {after[k][1] for k in changed} == {feast_adapter.feast_event_ts(epoch_micros(later))}
    values = _read(OnlineFeatures(store, "fraud_model_v1"))["terminal_daily"][:2]
    assert [(v["terminal_nb_tx_lagged_7d"], v["terminal_nb_tx_lagged_1d"]) for v in values] == [(5, 6), (5, 6)]


def _values_and_times(store) -> dict[tuple, tuple]:
    [table] = table_names(store, [store.get_feature_view("terminal_daily")]).values()
    with sqlite3.connect(store.config.online_store.path) as connection:
        rows = connection.execute(f'SELECT entity_key, feature_name, value, event_ts FROM "{table}"').fetchall()
    return {(key, name): (value, event_ts) for key, name, value, event_ts in rows}


def test_a_reader_behind_the_pruned_log_reads_everything_again(sqlite_store, monkeypatch) -> None:
    store = sqlite_store
    apply_and_materialize(store, END)
    monkeypatch.setattr(feast_adapter, "CHANGES_KEPT", 2)
    online, queries = _reader(store)
    _read(online)
    for day, terminal in enumerate(TERMINALS[:5], start=1):  # 5 entries logged, the oldest pruned past 4
        _sink_daily(store, "terminal_daily", [terminal], END + timedelta(days=day), float(day))
    queries.clear()
    after = _read(online)
    assert after == _read(OnlineFeatures(store, "fraud_model_v1"))
    assert _daily_entities(queries, "terminal_daily") == len(TERMINALS)
    assert _daily_entities(queries, "customer_daily") == len(CUSTOMERS)


def test_a_log_that_starts_again_drops_everything(sqlite_store) -> None:
    """A store file rebuilt while a worker runs: its log counts from 1 again, below what the worker has applied."""
    store = sqlite_store
    apply_and_materialize(store, END)
    for day in (1, 2):  # two entries: the reader below has applied up to the second
        _sink_daily(store, "terminal_daily", TERMINALS[:1], END + timedelta(days=day), float(day))
    online, queries = _reader(store)
    _read(online)
    with sqlite3.connect(store.config.online_store.path) as connection:
        connection.execute(f'DELETE FROM "{feast_adapter.CHANGES_TABLE}"')
        connection.execute("DELETE FROM sqlite_sequence")
    _sink_daily(store, "customer_daily", CUSTOMERS[:1], END + timedelta(days=3), 3.0)  # entry 1 of the new log
    queries.clear()
    assert _read(online) == _read(OnlineFeatures(store, "fraud_model_v1"))
    assert _daily_entities(queries, "customer_daily") == len(CUSTOMERS)


def test_without_its_triggers_a_view_is_read_from_the_store_every_time(sqlite_store) -> None:
    """Feast drops a table (and its triggers) when a view's definition changes: nothing stale is served then."""
    store = sqlite_store
    apply_and_materialize(store, END)
    online, queries = _reader(store)
    _read(online)
    [table] = table_names(store, [store.get_feature_view("customer_daily")]).values()
    with sqlite3.connect(store.config.online_store.path) as connection:
        for event in TRIGGER_EVENTS:
            connection.execute(f'DROP TRIGGER "{feast_adapter._trigger(table, event)}"')
        connection.execute(f'UPDATE "{table}" SET value = ? WHERE feature_name = ?',
                           (Value(int64_val=99).SerializeToString(), "customer_nb_tx_prev_7d"))  # fmt: skip
    queries.clear()
    rows = _read(online)
    assert {row["customer_nb_tx_prev_7d"] for row in rows["customer_daily"]} - {None} == {99}
    assert _daily_queries(queries)
    queries.clear()
    _read(online)
    assert _daily_queries(queries), "still uncached"


def test_a_full_cache_starts_again_and_stays_right(sqlite_store) -> None:
    store = sqlite_store
    apply_and_materialize(store, END)
    online, _ = _reader(store, cache_entries=10)
    reference = OnlineFeatures(store, "fraud_model_v1")
    for _ in range(3):
        assert _read(online) == _read(reference)
    assert len(online._reader._cache["terminal_daily"]) <= 10


def test_unknown_entities_are_cached_as_unknown_until_written(sqlite_store) -> None:
    store, missing = sqlite_store, 10**9
    apply_and_materialize(store, END)
    online, queries = _reader(store)
    terminals = [*TERMINALS, missing]
    assert set(online.read({"terminal_daily": terminals})["terminal_daily"][-1].values()) == {None}
    queries.clear()
    assert set(online.read({"terminal_daily": terminals})["terminal_daily"][-1].values()) == {None}
    assert not _daily_queries(queries), "an unknown entity is remembered as unknown"
    _push_daily(store, "terminal_daily", [missing], END + timedelta(days=1), 2.0)
    assert online.read({"terminal_daily": terminals})["terminal_daily"][-1]["terminal_nb_tx_lagged_7d"] == 2


def test_a_read_of_a_few_entities_goes_to_the_store(sqlite_store) -> None:
    """One transaction's read (`/predict`): checking the counters would cost more than the rows."""
    store = sqlite_store
    apply_and_materialize(store, END)
    online, queries = _reader(store)
    for _ in range(2):
        queries.clear()
        online.read({"customer_daily": [7], "customer_intraday": [7], "terminal_daily": [11]})
        assert len(_daily_queries(queries)) == 1 and not any("view_versions" in q for q in queries)


def test_a_store_locked_at_start_is_served_uncached(sqlite_store) -> None:
    """The counters cannot be installed while another process holds the store: no error, every read goes to it."""
    store = sqlite_store
    apply_and_materialize(store, END)
    [table] = table_names(store, [store.get_feature_view("terminal_daily")]).values()
    with sqlite3.connect(store.config.online_store.path) as connection:
        for event in TRIGGER_EVENTS:
            connection.execute(f'DROP TRIGGER "{feast_adapter._trigger(table, event)}"')
    lock = sqlite3.connect(store.config.online_store.path, timeout=0)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        prepare_sqlite(store, DAILY_VIEWS, timeout_s=0.1)
    finally:
        lock.rollback()
        lock.close()
    online, queries = _reader(store)
    for _ in range(2):
        queries.clear()
        assert _read(online) == _read(OnlineFeatures(store, "fraud_model_v1"))
        assert _daily_queries(queries)
