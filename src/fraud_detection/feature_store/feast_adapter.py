"""The one module that knows Feast's private names and storage formats (verified on Feast 0.67: the pin in
pyproject.toml; tests/feature_store/test_feast_contract.py fails loudly on an upgrade that changes them).

It reads several feature views of the online store in one round trip, and writes many rows in one, for the serving
path.

Feast's provider reads one view per call, and its SQLite reader parses every row's timestamp in Python: three views
for one transaction cost about 0.4 ms here. These readers fetch the rows of every view asked for in one statement
(SQLite: one `UNION ALL` query, each view's row-per-feature table pivoted to a row per entity) or one pipeline
(Redis: one `HMGET` per entity), using Feast's own table names, entity key serialization and hash-field names, so
they read exactly what Feast wrote. Feast's SQLite writer spends about 0.1 ms of Python per row (five statements,
one per feature); `SqliteWriter` writes the same rows with a few multi-row upserts per view. Any other online store
goes through Feast's provider. Tests check both against Feast: tests/feature_store/test_skew.py (reads equal
`get_online_features`, SQLite and Redis) and tests/feature_store/test_online_store.py (the rows written equal what
Feast's push sources write).
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import struct
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from fraud_detection.features.definitions import EPOCH

log = logging.getLogger(__name__)
Rows = dict[str, list[dict[str, Any]]]  # view name -> one row per requested entity (None values where unknown)
MAX_SQL_VARIABLES = 30_000  # SQLite allows 32,766 bound parameters a statement
MMAP_BYTES = 1 << 30  # address space, not memory: the OS pages in what is read
CACHE_MIN_ENTITIES = 16  # reads of fewer daily-view entities go to the store (one transaction: ~60 us)
UPSERT_ROWS = 512  # rows per write statement (3,072 parameters)
READ_TIMEOUT_S = 0.25  # Redis: a read that takes longer is a store that is down (the request degrades)


class StateReader(Protocol):
    def read(self, wanted: dict[str, Sequence[int]]) -> Rows:
        """For each view name, the rows of the given entity ids (in that order)."""
        ...


def state_reader(store: Any, views: Sequence[Any], cached: Sequence[str] = (), cache_entries: int = 0) -> StateReader:
    """The fastest reader for the store's online backend (`cached`: views kept in process, SQLite only)."""
    kind = store.config.online_store.type
    if kind == "sqlite":
        return SqliteReader(store, views, cached, cache_entries)
    if kind == "redis":
        return RedisReader(store, views)
    return ProviderReader(store, views)


def prepare_sqlite(store: Any, cached: Sequence[str], timeout_s: float = 5.0) -> None:
    """An SQLite online store made ready for serving: WAL journal (the write-behind never blocks readers) and the
    change counters of the views readers keep in process (`ViewVersions`). A no-op on any other store, or on a
    missing file (the reads report it)."""
    online = store.config.online_store
    if online.type != "sqlite" or not Path(online.path).is_file():
        return
    tables = table_names(store, [store.get_feature_view(name) for name in cached])
    try:
        with closing(sqlite3.connect(online.path, timeout=timeout_s)) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            ViewVersions(tables).install(connection)
    except sqlite3.OperationalError as error:  # locked or read-only: serving still works, reading every time
        log.warning("online store %s not prepared (%s): the daily views are read from it every time", online.path,
                    error)  # fmt: skip


def drop_stale_features(store: Any, views: Sequence[Any], timeout_s: float = 5.0) -> None:
    """Delete an SQLite store's rows of features its views no longer have (Feast keeps a view's table when its
    schema changes, and the old features' rows with it). A no-op on any other store or a missing file."""
    online = store.config.online_store
    if online.type != "sqlite" or not Path(online.path).is_file():
        return
    tables = table_names(store, views)
    with closing(sqlite3.connect(online.path, timeout=timeout_s)) as connection, connection:
        for view in views:
            names = [f.name for f in view.features]
            deleted = connection.execute(f'DELETE FROM "{tables[view.name]}" WHERE feature_name NOT IN '
                                         f"({_marks(names)})", names).rowcount  # fmt: skip
            if deleted:
                log.info("online store: deleted %d rows of features that view %s no longer has", deleted, view.name)


class SqliteReader:
    """Reads Feast's SQLite tables; the views named in `cached` are also kept in this process.

    A cached view's rows are served from memory for as long as its table is unchanged. Change is seen through
    `ViewVersions`: triggers on the table bump a counter on every insert, update or delete, whoever the writer
    (Feast's materialize and push, the online updater), and each read checks the counters in the same read
    transaction as its rows (one snapshot), so a cached row is never older than what the store holds for that read.
    Without the triggers (a store not prepared with `ViewVersions.install`), every read goes to the store.
    """

    def __init__(self, store: Any, views: Sequence[Any], cached: Sequence[str] = (), cache_entries: int = 0) -> None:
        config = store.config
        self._path = Path(config.online_store.path)
        self._version = config.entity_key_serialization_version
        self._views = {v.name: v for v in views}
        self._tables = table_names(store, views)
        self._kinds = {v.name: value_kinds(v) for v in views}
        width = max(len(kinds) for kinds in self._kinds.values())
        self._selects = {view: _pivot_select(view, self._tables[view], list(kinds), width)
                         for view, kinds in self._kinds.items()}  # fmt: skip
        unknown = sorted(set(cached) - set(self._views))
        if unknown:
            raise ValueError(f"cached views {unknown}; expected some of {sorted(self._views)}")
        self._versions = ViewVersions({view: self._tables[view] for view in cached})
        self._cache: dict[str, dict[int, dict[str, Any]]] = {view: {} for view in cached}
        self._cache_entries = cache_entries
        self._seen: dict[str, tuple] = {}  # each cached view's counter when its rows were read
        self._seen_change: int | None = None  # the latest entry of our writer's log applied to the cache
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one read transaction at a time on the connection

    def read(self, wanted: dict[str, Sequence[int]]) -> Rows:
        # Checking the counters costs about as much as reading a few entities: small reads go to the store (one
        # statement, its own snapshot); larger ones read the counters and the rows in one transaction.
        use_cache = sum(len(ids) for view, ids in wanted.items() if view in self._cache) >= CACHE_MIN_ENTITIES
        with self._lock:
            connection = self._connect()
            if use_cache:
                connection.execute("BEGIN")
            try:
                held = self._usable_cache(connection) if use_cache else {}
                missing = {view: [i for i in dict.fromkeys(map(int, ids)) if i not in held.get(view, ())]
                           for view, ids in wanted.items()}  # fmt: skip
                fetched = self._fetch(connection, {view: ids for view, ids in missing.items() if ids})
            finally:
                if use_cache:
                    connection.execute("COMMIT")
            rows: Rows = {}
            for view, ids in wanted.items():
                new, old = fetched.get(view, {}), held.get(view, {})
                rows[view] = [new[i] if i in new else old[i] for i in map(int, ids)]
            for view, cache in held.items():
                new = fetched.get(view, {})
                if len(cache) + len(new) > self._cache_entries:
                    cache.clear()  # bounded: start again rather than track recency on every read
                if len(new) <= self._cache_entries:
                    cache.update(new)
        return rows

    def _usable_cache(self, connection: sqlite3.Connection) -> dict[str, dict[int, dict[str, Any]]]:
        """The cached views, less what changed since their rows were read: the entities our writer wrote (a label
        rewriting a terminal's row drops that terminal), a whole view that another writer changed; none without
        the counters."""
        seen = self._versions.read(connection)
        if seen is None:
            self._seen, self._seen_change = {}, None
            return {}
        self._seen_change, changed = self._versions.changes(connection, self._seen_change, self._cache_entries)
        for view, rows in self._cache.items():
            if changed is None or seen.get(view) != self._seen.get(view):
                rows.clear()
                continue
            for entity in changed.get(view, ()):
                rows.pop(entity, None)
        self._seen = seen
        return self._cache

    def _fetch(self, connection: sqlite3.Connection, wanted: dict[str, list[int]]) -> dict[str, dict[int, dict]]:
        """Each view's rows of the distinct entity ids asked for: every feature of the view, None where missing or
        null (a feature's `Value` field follows from the view's schema)."""
        ids = {view: {_entity_key(_join_key(self._views[view]), i, self._version): i for i in view_ids}
               for view, view_ids in wanted.items()}  # fmt: skip
        found: dict[str, dict[int, dict]] = {view: {} for view in wanted}
        for statement, arguments in self._statements({view: list(keys) for view, keys in ids.items()}):
            for view, key, *blobs in connection.execute(statement, arguments).fetchall():
                kinds = self._kinds[view].items()  # a narrower view's padding columns fall off the zip
                found[view][ids[view][key]] = {
                    name: decoded_value(kind, blob) for (name, kind), blob in zip(kinds, blobs, strict=False)
                }
        for view, view_ids in wanted.items():
            for i in view_ids:
                if i not in found[view]:
                    found[view][i] = dict.fromkeys(self._kinds[view])
        return found

    def _statements(self, keys: dict[str, list[bytes]]) -> list[tuple[str, list]]:
        """One row per entity: the view's features pivoted into columns (in `value_kinds` order, NULL where the
        store has no row), the views' selects joined by `UNION ALL` in as few statements as the parameter limit
        allows."""
        parts = []
        for view, view_keys in keys.items():
            for start in range(0, len(view_keys), MAX_SQL_VARIABLES):
                chunk = [bytearray(key) for key in sorted(view_keys[start : start + MAX_SQL_VARIABLES])]
                parts.append((f"{self._selects[view]} WHERE entity_key IN ({_marks(chunk)}) GROUP BY entity_key",
                              chunk))  # fmt: skip
        statements, current, arguments = [], [], []
        for sql, chunk in parts:
            if current and len(arguments) + len(chunk) > MAX_SQL_VARIABLES:
                statements.append((" UNION ALL ".join(current), arguments))
                current, arguments = [], []
            current.append(sql)
            arguments.extend(chunk)
        if current:
            statements.append((" UNION ALL ".join(current), arguments))
        return statements

    def _connect(self) -> sqlite3.Connection:
        """Opened on first use; never creates the file (`mode=rw`: an existing database only); transactions are
        explicit. Memory-mapped: a page another connection changed is read from the OS cache, not with a system
        call."""
        if self._connection is None:
            self._connection = sqlite3.connect(f"file:{self._path}?mode=rw", uri=True, check_same_thread=False,
                                               isolation_level=None)  # fmt: skip
            self._connection.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
        return self._connection


def _pivot_select(view: str, table: str, features: list[str], width: int) -> str:
    """SELECT view, entity_key, <one column per feature> (padded with NULLs to `width` columns) of Feast's
    row-per-feature table."""
    pivot = [f"max(CASE feature_name WHEN {_literal(name)} THEN value END)" for name in features]
    columns = ", ".join(pivot + ["NULL"] * (width - len(features)))
    return f'SELECT {_literal(view)}, entity_key, {columns} FROM "{table}"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class ViewVersions:
    """What changed in the cached views' tables, in two records:
    - a change counter per view, in `VERSIONS_TABLE` (view, generation, version), bumped by SQLite triggers on every
      row that another writer (Feast's materialize and push) inserts, updates or deletes: a reader drops the whole
      view then. `generation` is random per install: a store file rebuilt from scratch never repeats an old token.
      Dropping a table (Feast's teardown or a changed definition) drops its triggers, which `read` sees: then
      nothing is cached until `install` runs again.
    - the entities our own writer (`SqliteWriter`) wrote, one row each in `CHANGES_TABLE` (seq, view, entity),
      logged in the transaction of its rows, which it marks as its own (`created_ts` = `OWN_ROWS`, which the
      triggers skip): a reader drops only those entities. The log keeps the latest `CHANGES_KEPT` entries; a reader
      that fell further behind drops everything.
    """

    def __init__(self, tables: dict[str, str]) -> None:
        self.tables = dict(tables)  # view name -> Feast table name
        triggers = [_trigger(table, event) for table in self.tables.values() for event in TRIGGER_EVENTS]
        self._query = (
            f'SELECT view, generation, version FROM "{VERSIONS_TABLE}" WHERE view IN ({_marks(self.tables)}) '
            "UNION ALL SELECT name, NULL, NULL FROM sqlite_master "
            f"WHERE type = 'trigger' AND name IN ({_marks(triggers)})"
        )
        self._arguments, self._expected = [*self.tables, *triggers], len(self.tables) + len(triggers)

    def install(self, connection: sqlite3.Connection) -> None:
        """Create the counters and triggers (idempotent; needs the write lock for a moment)."""
        if not self.tables:
            return
        with connection:
            connection.execute(f'CREATE TABLE IF NOT EXISTS "{VERSIONS_TABLE}" (view TEXT PRIMARY KEY, '
                               "generation TEXT NOT NULL, version INTEGER NOT NULL)")  # fmt: skip
            connection.execute(f'CREATE TABLE IF NOT EXISTS "{CHANGES_TABLE}" (seq INTEGER PRIMARY KEY '
                               "AUTOINCREMENT, view TEXT NOT NULL, entity INTEGER NOT NULL)")  # fmt: skip
            for view, table in self.tables.items():
                connection.execute(
                    f'INSERT OR IGNORE INTO "{VERSIONS_TABLE}" VALUES (?, ?, 0)', (view, uuid.uuid4().hex)
                )
                for event in TRIGGER_EVENTS:
                    connection.execute(
                        f'DROP TRIGGER IF EXISTS "{table}_version_{event.lower()}"'
                    )  # the earlier triggers counted every row
                    foreign = "" if event == "DELETE" else f" WHEN NEW.created_ts IS NOT {OWN_ROWS}"
                    connection.execute(
                        f'CREATE TRIGGER IF NOT EXISTS "{_trigger(table, event)}" AFTER {event} ON "{table}"{foreign} '
                        f"BEGIN UPDATE \"{VERSIONS_TABLE}\" SET version = version + 1 WHERE view = '{view}'; END"
                    )

    def read(self, connection: sqlite3.Connection) -> dict[str, tuple] | None:
        """Each view's (generation, version), which changes whenever its table changes; None if a counter or a
        trigger is missing."""
        try:
            rows = connection.execute(self._query, self._arguments).fetchall()
        except sqlite3.OperationalError:  # no counters table
            return None
        if len(rows) != self._expected:
            return None
        return {view: (generation, version) for view, generation, version in rows if view in self.tables}

    @staticmethod
    def changes(connection: sqlite3.Connection, since: int | None, limit: int) -> tuple[int, dict[str, set] | None]:
        """(the log's latest entry, the entities of each view our writer wrote after entry `since`); None for the
        entities when they cannot be told: no `since` yet, the entries after it pruned, more than `limit`, or a log
        that started again (a store file rebuilt)."""
        try:
            first, last = connection.execute(LOG_BOUNDS).fetchone()
        except sqlite3.OperationalError:  # no log
            return 0, None
        if last is None:  # nothing logged yet (after something was: a new log)
            return 0, {} if since == 0 else None
        if since == last:
            return since, {}
        if since is None or last < since or first > since + 1 or last - since > limit:
            return last, None
        changed: dict[str, set] = {}
        for view, entity in connection.execute(f'SELECT view, entity FROM "{CHANGES_TABLE}" WHERE seq > ?', (since,)):
            changed.setdefault(view, set()).add(entity)
        return last, changed

    @staticmethod
    def log(connection: sqlite3.Connection, view: str, entities: Sequence[int]) -> None:
        """Our writer's entities of a view (in its transaction), the oldest entries pruned past `CHANGES_KEPT`."""
        insert = f'INSERT INTO "{CHANGES_TABLE}" (view, entity) VALUES (?, ?)'
        connection.executemany(insert, [(view, int(entity)) for entity in entities])
        first, last = connection.execute(LOG_BOUNDS).fetchone()
        if last - first >= 2 * CHANGES_KEPT:
            connection.execute(f'DELETE FROM "{CHANGES_TABLE}" WHERE seq <= ?', (last - CHANGES_KEPT,))

    @staticmethod
    def logged(connection: sqlite3.Connection, table: str) -> bool:
        """Whether our writer's rows of `table` go to the log (its triggers skip them) rather than to the counter."""
        found = (
            "SELECT count(*) FROM sqlite_master WHERE (type = 'trigger' AND name = ?) OR (type = 'table' AND name = ?)"
        )
        return connection.execute(found, (_trigger(table, "INSERT"), CHANGES_TABLE)).fetchone()[0] == 2


VERSIONS_TABLE = "fraud_detection_view_versions"
CHANGES_TABLE = "fraud_detection_changed_entities"
# two subqueries: SQLite looks up a lone min() or max() of the key, but scans the table for both in one query
LOG_BOUNDS = f'SELECT (SELECT min(seq) FROM "{CHANGES_TABLE}"), (SELECT max(seq) FROM "{CHANGES_TABLE}")'
CHANGES_KEPT = 200_000  # log entries kept (a day's rollover of the default world logs about 15,000)
OWN_ROWS = -1  # `created_ts` of the rows our writer writes to a cached view (Feast never reads it online)
TRIGGER_EVENTS = ("INSERT", "UPDATE", "DELETE")


def _marks(items: Sequence) -> str:
    return ",".join("?" * len(items))


def _trigger(table: str, event: str) -> str:
    return f"{table}_changes_{event.lower()}"


def table_names(store: Any, views: Sequence[Any]) -> dict[str, str]:
    """Feast's SQLite table of each view."""
    from feast.infra.online_stores.sqlite import _table_id

    config = store.config
    versioning = config.registry.enable_online_feature_view_versioning
    return {v.name: _table_id(config.project, v, versioning) for v in views}


class SqliteWriter:
    """Feast's row format (entity_key, feature_name, value proto, value_text, event_ts, created_ts), upserted with
    one statement per view; its own connection, WAL journal, `synchronous=NORMAL` (no fsync per commit: the online
    store is a cache of the offline tables and the updater's stream).

    Values go straight to their serialized `Value` protos (`encoded_value`: the bytes `Value(...).SerializeToString()`
    gives, without a message object per value), the event time to the integer Feast's datetime adapter stores (once
    per entity)."""

    COLUMNS = ("entity_key", "feature_name", "value", "value_text", "event_ts", "created_ts")

    def __init__(self, store: Any, views: Sequence[Any]) -> None:
        config = store.config
        self._path, self._version = Path(config.online_store.path), config.entity_key_serialization_version
        self._views = {v.name: v for v in views}
        self._kinds = {v.name: value_kinds(v) for v in views}
        self._tables = table_names(store, views)
        self._connection: sqlite3.Connection | None = None

    @staticmethod
    def supports(store: Any) -> bool:
        """Feast's plain SQLite layout (no value_num or vector columns to fill)."""
        online = store.config.online_store
        return online.type == "sqlite" and not getattr(online, "vector_enabled", False) and not getattr(
            online, "enable_openai_compatible_store", False)  # fmt: skip

    def write(self, view: str, rows: Sequence[tuple[int, int, dict[str, Any]]]) -> None:
        """(entity id, event time in epoch microseconds, {feature: int, float or None}) rows of one view; a row
        may hold some of the view's features (the others keep their stored values)."""
        join_key, kinds = _join_key(self._views[view]), self._kinds[view]
        values: list[Any] = []  # the statement's parameters, row after row
        # Blobs are bound as bytearray: CPython's sqlite3 binds int, float, str and bytearray at once and sends any
        # other type, bytes included, through its adapter registry first (~1 us of failed lookups a parameter; the
        # upsert statements of 878 customers: 31 ms as bytes, 18 ms as bytearray). The reads' keys likewise.
        for entity, event_us, row in rows:
            key, event_ts = bytearray(_entity_key(join_key, int(entity), self._version)), feast_event_ts(event_us)
            for name, value in row.items():
                blob, text = encoded_value(kinds[name], value)
                values.extend((key, name, bytearray(blob), text, event_ts))
        width, start = len(self.COLUMNS) - 1, 0  # created_ts is a constant in the statement
        connection = self._connect()
        with connection:
            logged = ViewVersions.logged(connection, self._tables[view])
            for size in _statement_sizes(len(values) // width):
                connection.execute(self._upsert(view, size, logged), values[start : start + size * width])
                start += size * width
            if logged:
                ViewVersions.log(connection, view, [entity for entity, _, _ in rows])

    @functools.lru_cache(maxsize=128)  # noqa: B019 (one writer per store: a handful of statements)
    def _upsert(self, view: str, rows: int, logged: bool) -> str:
        """One statement for many rows: SQLite runs it in one step (executemany steps, and takes the GIL, per
        row). Only a few sizes (`_statement_sizes`), so that the connection's statement cache holds them all: a
        statement of thousands of placeholders costs more to prepare than to run. created_ts: NULL, as Feast's push
        leaves it, or `OWN_ROWS` in a view whose changes our log records (`ViewVersions`). A value equal to the
        stored one leaves its row as it is (an online read takes each value's latest row whatever its age): no page
        is written for it, and a day's first rollover, which sends every value, costs a fifth less."""
        created, table = OWN_ROWS if logged else "NULL", self._tables[view]
        marks = "(" + ", ".join("?" * (len(self.COLUMNS) - 1)) + f", {created})"
        update = ", ".join(f"{c} = excluded.{c}" for c in self.COLUMNS[2:])
        return (f'INSERT INTO "{table}" ({", ".join(self.COLUMNS)}) VALUES {", ".join([marks] * rows)} '
                f"ON CONFLICT(entity_key, feature_name) DO UPDATE SET {update} "
                f'WHERE "{table}".value IS NOT excluded.value')  # fmt: skip

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = sqlite3.connect(f"file:{self._path}?mode=rw", uri=True, check_same_thread=False)
            self._connection.execute("PRAGMA journal_mode=WAL")
            self._connection.execute("PRAGMA synchronous=NORMAL")
            self._connection.execute(f"PRAGMA mmap_size={MMAP_BYTES}")  # pages looked up in place, not copied in
        return self._connection


def _statement_sizes(rows: int) -> list[int]:
    """Rows per statement: full chunks of `UPSERT_ROWS`, then the rest as powers of two (256 + 128 + 4 ...)."""
    sizes = [UPSERT_ROWS] * (rows // UPSERT_ROWS)
    rest = rows % UPSERT_ROWS
    return sizes + [1 << bit for bit in reversed(range(rest.bit_length())) if rest >> bit & 1]


def feast_event_ts(event_us: int) -> int:
    """The event_ts Feast's SQLite store writes for an event time: `int(naive_utc.timestamp())` (its datetime
    adapter), which reads the naive UTC time as local time. Where local time is UTC, that is the whole seconds since
    the epoch, computed here without building a datetime (about 3 us a row)."""
    if LOCAL_TIME_IS_UTC and event_us >= 0:
        return event_us // 1_000_000
    from feast.infra.online_stores.sqlite import adapt_datetime_epoch

    return adapt_datetime_epoch((EPOCH + timedelta(microseconds=event_us)).replace(tzinfo=None))


LOCAL_TIME_IS_UTC = time.timezone == 0 and not time.daylight


def value_kinds(view: Any) -> dict[str, str]:
    """Each feature of a view and the `Value` field it is stored in (our views hold Int64, Float64 and
    Array(Float64) only)."""
    from feast.types import Array, Float64, Int64

    kinds = {Int64: "int64_val", Float64: "double_val", Array(Float64): "double_list_val"}
    unknown = [f"{f.name}: {f.dtype}" for f in view.features if f.dtype not in kinds]
    if unknown:
        raise TypeError(f"view {view.name} has features {unknown}; expected Int64, Float64 or Array(Float64)")
    return {f.name: kinds[f.dtype] for f in view.features}


# Value's field 4 (int64_val, a varint), field 5 (double_val, fixed64), field 15 (double_list_val: a DoubleList
# message, whose field 1 holds the doubles packed)
INT64_TAG, DOUBLE_TAG, DOUBLE_LIST_TAG, PACKED_TAG = b"\x20", b"\x29", b"\x7a", b"\x0a"
DOUBLE = struct.Struct("<d")
SHORT_LIST = 15  # doubles a list can hold with one-byte lengths (8 * 15 + 2 < 128)


def encoded_value(kind: str, value: Any) -> tuple[bytes, str | None]:
    """(serialized `Value` proto, Feast's value_text: the number as text, None for a list) of an int64, double or
    double-list feature value; None is an unset Value (empty bytes, no text). The common shapes are built directly
    (a double: tag + 8 bytes; an int64 below 128: tag + 1 byte; a short list of doubles: two tags, two lengths and
    the doubles), the rest by protobuf (its varint is faster than Python's)."""
    if value is None:
        return b"", None
    if kind == "int64_val":
        number = int(value)
        blob = SMALL_INT64[number] if 0 <= number < 128 else _value_class()(int64_val=number).SerializeToString()
        return blob, str(number)
    if kind == "double_list_val":
        n = len(value)
        if n == 0:
            return EMPTY_LIST, None
        if n <= SHORT_LIST:
            head = DOUBLE_LIST_TAG + bytes((8 * n + 2,)) + PACKED_TAG + bytes((8 * n,))
            return head + struct.pack(f"<{n}d", *value), None
        return _value_class()(double_list_val={"val": [float(v) for v in value]}).SerializeToString(), None
    number = float(value)
    return DOUBLE_TAG + DOUBLE.pack(number), str(number)


EMPTY_LIST = DOUBLE_LIST_TAG + b"\x00"  # a double_list_val of no values
SMALL_INT64 = [INT64_TAG + bytes((n,)) for n in range(128)]  # a oneof field is serialized even at 0


class RedisReader:
    """One hash per entity (its key: Feast's serialized entity key + the project), one field per view's feature.

    Its own client on Feast's connection string, with short timeouts and no retries (`READ_TIMEOUT_S`): redis-py's
    default retries with backoff would hold a request for seconds on a dead server; the caller degrades instead.
    """

    def __init__(self, store: Any, views: Sequence[Any]) -> None:
        import redis
        from feast.infra.online_stores.redis import RedisOnlineStore, _versioned_fv_name
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        config = store.config
        self._config, self._online = config, store._get_provider().online_store  # Feast's own key/field helpers
        if config.online_store.redis_type != "redis":
            raise ValueError(f"online store redis_type {config.online_store.redis_type}; expected plain redis")
        [node], options = RedisOnlineStore._parse_connection_string(config.online_store.connection_string)
        timeouts = {"socket_timeout": READ_TIMEOUT_S, "socket_connect_timeout": READ_TIMEOUT_S}
        self._client = redis.Redis(host=node["host"], port=int(node["port"]), retry=Retry(NoBackoff(), 0),
                                   **{**timeouts, **options})  # fmt: skip
        self._project = config.project.encode("utf-8")
        self._views = {v.name: v for v in views}
        self._fields = {
            v.name: self._online._generate_hset_keys_for_features(
                v, [f.name for f in v.features], fv_name_override=_versioned_fv_name(v, config)
            )
            for v in views
        }

    def read(self, wanted: dict[str, Sequence[int]]) -> Rows:
        """One HMGET per distinct entity, for the fields of every view asked of it (views share its hash)."""
        client = self._client
        version = self._config.entity_key_serialization_version
        asked: dict[tuple[str, int], list[str]] = {}  # (join key, entity) -> views
        for view, ids in wanted.items():
            join_key = _join_key(self._views[view])
            for entity in dict.fromkeys(int(i) for i in ids):
                asked.setdefault((join_key, entity), []).append(view)
        with client.pipeline(transaction=False) as pipe:
            for (join_key, entity), views in asked.items():
                fields = [field for view in views for field in self._fields[view][1]]
                pipe.hmget(_entity_key(join_key, entity, version) + self._project, fields)
            answers = pipe.execute()
        found: dict[tuple[str, int], dict[str, Any]] = {}
        for ((_, entity), views), values in zip(asked.items(), answers, strict=True):
            position = 0
            for view in views:
                names = self._fields[view][0]
                chunk = values[position : position + len(names)]
                position += len(names)
                stored = {n: _python(v) for n, v in zip(names, chunk, strict=True) if not n.startswith("_ts:") and v}
                found[(view, entity)] = _row(self._views[view], stored or None)
        return {view: [found[(view, int(i))] for i in ids] for view, ids in wanted.items()}


def state_writer(store: Any, views: Sequence[Any]) -> StateWriter:
    """The fastest writer for the store's online backend: Feast's SQLite rows directly, else Feast's provider."""
    return SqliteWriter(store, views) if SqliteWriter.supports(store) else ProviderWriter(store, views)


class StateWriter(Protocol):
    def write(self, view: str, rows: Sequence[tuple[int, int, dict[str, Any]]]) -> None:
        """(entity id, event time in epoch microseconds, {feature: value}) rows of one view."""
        ...


class ProviderWriter:
    """Any online store, through Feast's provider (where `store.push` ends too): rows as Feast's value protos."""

    def __init__(self, store: Any, views: Sequence[Any]) -> None:
        self._config, self._provider = store.config, store._get_provider()  # no public accessor; push() uses it
        self._views = {v.name: v for v in views}
        self._kinds = {v.name: value_kinds(v) for v in views}

    def write(self, view: str, rows: Sequence[tuple[int, int, dict[str, Any]]]) -> None:
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey

        table, kinds, Value = self._views[view], self._kinds[view], _value_class()
        key = _join_key(table)
        data = [(EntityKey(join_keys=[key], entity_values=[Value(int64_val=int(entity))]),
                 {name: _proto(kinds[name], value) for name, value in row.items()},
                 EPOCH + timedelta(microseconds=event_us), None)
                for entity, event_us, row in rows]  # fmt: skip
        self._provider.online_write_batch(self._config, table, data, None)


def _proto(kind: str, value: Any) -> Any:
    """A feature value as Feast's `Value` proto (an unset one for None)."""
    Value = _value_class()
    if value is None:
        return Value()
    if kind == "double_list_val":
        return Value(double_list_val={"val": [float(v) for v in value]})
    return Value(int64_val=int(value)) if kind == "int64_val" else Value(double_val=float(value))


class ProviderReader:
    """Any online store, through Feast's provider: one call per view."""

    def __init__(self, store: Any, views: Sequence[Any]) -> None:
        self._store, self._provider, self._views = store, store._get_provider(), {v.name: v for v in views}

    def read(self, wanted: dict[str, Sequence[int]]) -> Rows:
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        rows: Rows = {}
        for view_name, ids in wanted.items():
            view = self._views[view_name]
            keys = [EntityKey(join_keys=[_join_key(view)], entity_values=[Value(int64_val=int(i))]) for i in ids]
            names = [f.name for f in view.features]
            answers = self._provider.online_read(self._store.config, view, keys, names)
            rows[view_name] = [_row(view, None if values is None else {n: _value(values.get(n)) for n in names})
                               for _, values in answers]  # fmt: skip
        return rows


def decoded_value(kind: str, blob: bytes) -> Any:
    """The number a serialized `Value` holds (the inverse of `encoded_value`; None for an unset or null Value).
    The two commonest shapes are read directly, a double (fixed64) and an int64 below 128 (a one-byte varint, the
    counts); the rest goes through protobuf's parser, which is faster than Python at longer varints."""
    if not blob:
        return None
    if len(blob) == 9 and kind == "double_val" and blob[0] == DOUBLE_TAG[0]:
        return DOUBLE.unpack_from(blob, 1)[0]
    if len(blob) == 2 and kind == "int64_val" and blob[0] == INT64_TAG[0] and blob[1] < 0x80:
        return blob[1]
    if blob == EMPTY_LIST:  # a terminal's day without transactions, no early labels
        return []
    size = len(blob) - 4
    if (kind == "double_list_val" and 0 < size == blob[3] == blob[1] - 2 and size % 8 == 0
            and blob[0] == DOUBLE_LIST_TAG[0]):  # fmt: skip
        return list(struct.unpack_from(f"<{size // 8}d", blob, 4))  # a short list (`encoded_value`)
    return _value(_value_class().FromString(blob))


def _join_key(view: Any) -> str:
    return view.entity_columns[0].name


def _row(view: Any, stored: dict[str, Any] | None) -> dict[str, Any]:
    names = [f.name for f in view.features]
    return dict.fromkeys(names) if stored is None else {n: stored.get(n) for n in names}


@functools.lru_cache(maxsize=1_000_000)
def _entity_key(join_key: str, entity_id: int, version: int) -> bytes:
    """Feast's serialized entity key (cached: it costs about 14 us and customers come back)."""
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    key = EntityKey(join_keys=[join_key], entity_values=[Value(int64_val=entity_id)])
    return serialize_entity_key(key, entity_key_serialization_version=version)


@functools.cache
def _value_class() -> type:
    from feast.protos.feast.types.Value_pb2 import Value

    return Value


def _python(blob: bytes) -> Any:
    return _value(_value_class().FromString(blob))


def _value(value: Any) -> Any:
    """The Python value of a `Value` proto: a number, a list for a list kind, None where unset or null."""
    kind = value.WhichOneof("val") if value is not None else None
    if not kind or kind == "null_val":
        return None
    held = getattr(value, kind)
    return list(held.val) if kind.endswith("_list_val") else held
