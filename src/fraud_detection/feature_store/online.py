"""The online store as serving and the online updater use it: feature vectors for single transactions through the
model's feature service, and writes of the updater's rows (`feast_adapter` holds what knows Feast's storage).

Feast is imported lazily: `import feast` takes seconds and sets up Prometheus multiprocess state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraud_detection.feature_store.feast_adapter import state_reader, state_writer
from fraud_detection.features.definitions import (
    CUSTOMER_INTRADAY,
    EPOCH,
    INTRADAY_STATE,
    MICROS_PER_DAY,
    epoch_micros,
    features_of_one,
    pack_intraday,
    unpack_intraday,
)

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore

# Written only by materialization and the online updater's day rollover: serving keeps them in process
# (`feast_adapter.SqliteReader`, checked against the store's change counters on every read).
DAILY_VIEWS = ("customer_daily", "terminal_daily")
INTRADAY_VIEW = "customer_intraday"  # stored as one list (`INTRADAY_STATE`), read and written as CUSTOMER_INTRADAY


class OnlineStoreUnavailable(RuntimeError):
    """The online store cannot be read or written (Redis down, SQLite file missing or locked, ...)."""


def _sqlite_file(store: FeatureStore) -> Path | None:
    online = store.config.online_store
    return Path(online.path) if online.type == "sqlite" else None


def _check_file(path: Path | None) -> None:
    """Feast keeps its SQLite connection open: a deleted file would go on answering (and swallowing writes)."""
    if path is not None and not path.exists():
        raise OnlineStoreUnavailable(f"online feature store file {path} is missing: run the materialize stage")


class OnlineFeatures:
    """Feature vectors for single transactions from the online store, as serving fetches them.

    Driven by the feature service: its on-demand view names the stored views to read and the function to apply
    (`features_of_one`, the body of that view). `vector` reads those views straight from the online store in one
    round trip (`feast_adapter`) and applies the function, as `store.get_online_features(service, ...)` does,
    without its ~1 ms of generic Python per call (tests/feature_store/test_skew.py compares the two). As in Feast,
    the latest value is returned whatever its age: the online updater's day rollover (or a daily materialization)
    keeps the daily views current. Views named in `cached` are kept in this process while the store says they are
    unchanged (SQLite; up to `cache_entries` entities a view). The intraday view's stored list comes back as its
    `CUSTOMER_INTRADAY` values.
    """

    def __init__(
        self, store: FeatureStore, feature_service: str, cached: Sequence[str] = (), cache_entries: int = 0
    ) -> None:
        self._store = store
        self._service: FeatureService = store.get_feature_service(feature_service)  # once: a lookup costs ms
        self._file = _sqlite_file(store)
        on_demand = [store.get_on_demand_feature_view(p.name) for p in self._service.feature_view_projections]
        names = {view for odfv in on_demand for view in odfv.source_feature_view_projections}
        self._views = [store.get_feature_view(name) for name in sorted(names)]
        self._reader = state_reader(store, self._views, cached, cache_entries)

    def vector(self, customer_id: int, terminal_id: int, tx_datetime: datetime, tx_amount: float) -> dict[str, Any]:
        """The model's features for one transaction (unknown entities get the documented defaults)."""
        return features_of_one(self.state(customer_id, terminal_id), epoch_micros(tx_datetime), tx_amount)

    def state(self, customer_id: int, terminal_id: int) -> dict[str, Any]:
        """The stored state the feature service's views hold for the entities (None where unknown)."""
        ids = {"customer_id": customer_id, "terminal_id": terminal_id}
        rows = self.read({view.name: [ids[view.entity_columns[0].name]] for view in self._views})
        return {name: value for [row] in rows.values() for name, value in row.items()}

    def read(self, wanted: dict[str, Sequence[int]]) -> dict[str, list[dict[str, Any]]]:
        """For each view name, its latest values for each entity id, in one round trip (None where unknown)."""
        _check_file(self._file)
        try:
            rows = self._reader.read(wanted)
            if INTRADAY_VIEW in rows:
                rows[INTRADAY_VIEW] = [unpack_intraday(row[INTRADAY_STATE]) for row in rows[INTRADAY_VIEW]]
            return rows
        except Exception as error:  # the store's own errors differ by backend: one typed error for callers
            raise OnlineStoreUnavailable(f"online feature store unreadable: {error}") from error

    @property
    def view_names(self) -> list[str]:
        return [view.name for view in self._views]


class OnlineUpdaterSink:
    """Writes what the online updater produces into the online store.

    Equivalent to `store.push(<view>_push, rows)`, whose registry lookups and DataFrame conversions cost about
    10 ms a call here: the feature views are looked up once and rows go to `feast_adapter.SqliteWriter` (Feast's
    SQLite row format, one statement a view) or, as Feast's value protos, to the provider's writer (the online
    store's own write path, which push also ends in: `feast_adapter.ProviderWriter`).
    """

    def __init__(self, store: FeatureStore) -> None:
        self._file = _sqlite_file(store)
        views = [store.get_feature_view(name) for name in (*DAILY_VIEWS, INTRADAY_VIEW)]
        self._writer = state_writer(store, views)
        self._written: dict[str, dict[int, dict]] = {view: {} for view in DAILY_VIEWS}  # each entity's latest row

    def new_day(self, day: int, customer_rows: dict[int, dict], terminal_rows: dict[int, dict]) -> None:
        """Every entity's daily state for the day that starts: the values that differ from the row this sink wrote
        last (every value, the first time), stamped at the day's start. An online read takes each value's latest
        row whatever its age (Feast applies no TTL online), so an unchanged value needs no new row; about half the
        values of the default world stay the same from one day to the next. The rows are the updater's, which
        replaces a row rather than changing it."""
        start_us = day * MICROS_PER_DAY
        for view, rows in (("customer_daily", customer_rows), ("terminal_daily", terminal_rows)):
            written = self._written[view]
            changed = [(entity, start_us, values) for entity, row in rows.items()
                       if (values := _changed(row, written.get(entity)))]  # fmt: skip
            if changed:
                self.write(view, changed)
            written.update(rows)

    def terminals(self, rows: dict[int, tuple[int, dict]]) -> None:
        """Terminals' daily rows again (terminal -> (moment, row)), changed by labels that became known during the
        day, each stamped with the moment the latest of them became known (a store keeps the newest row: Redis
        ignores one no newer than what it holds), in one store call."""
        self.write("terminal_daily", [(terminal, known_us, row) for terminal, (known_us, row) in rows.items()])
        self._written["terminal_daily"].update((terminal, row) for terminal, (_, row) in rows.items())

    def transaction(self, customer_id: int, tx_us: int, intraday_row: dict) -> None:
        """A customer's intraday state after one more transaction."""
        self.intraday({customer_id: intraday_row})

    def intraday(self, rows: dict[int, dict]) -> None:
        """Customers' intraday states (`CUSTOMER_INTRADAY` rows, each stamped at its latest transaction), in one
        store call."""
        last = CUSTOMER_INTRADAY[-1]
        stored = [(customer, int(row[last]), {INTRADAY_STATE: pack_intraday(row)}) for customer, row in rows.items()]
        self.write(INTRADAY_VIEW, stored)

    def write(self, view: str, rows: Sequence[tuple[int, int, dict[str, Any]]]) -> None:
        """(entity id, event time in epoch microseconds, values) rows of one view."""
        _check_file(self._file)
        try:
            self._writer.write(view, rows)
        except Exception as error:  # the store's own errors differ by backend: one typed error for callers
            raise OnlineStoreUnavailable(f"online feature store unwritable: {error}") from error


def _changed(row: dict[str, Any], written: dict[str, Any] | None) -> dict[str, Any]:
    """The values of `row` that differ from those `written` holds (all of them without a written row)."""
    if written is None:
        return row
    return {name: value for name, value in row.items() if name not in written or written[name] != value}


def day_start(day: int) -> datetime:
    return EPOCH + timedelta(days=day)
