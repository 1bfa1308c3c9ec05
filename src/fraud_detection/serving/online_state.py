"""The feature state serving reads and writes: the Feast online store, read in one round trip per request
(`online_reads`), and written behind the response.

A scored transaction's new intraday row (the customer's running totals for the day) is kept in this process at
once, so this process's next read of the customer sees it, and a background thread writes the pending rows in one
store call every `serve.state_write_interval_ms`. Another worker sees it once written (about a millisecond). If the
store cannot be written, the rows stay pending, are retried, and `writable` turns false (answers say so).
Reads and writes use separate store connections (SQLite: a WAL journal, so that readers never wait for the writer).
The daily views (`DAILY_VIEWS`) change only at materialization and the day rollover: each worker keeps the rows it
has read, for as long as the store's change counters say they are current (`serve.daily_cache_entries` entities a
view); the intraday view is read fresh every time.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

from fraud_detection.feature_store.feast_adapter import prepare_sqlite
from fraud_detection.feature_store.online import DAILY_VIEWS, OnlineFeatures, OnlineStoreUnavailable, OnlineUpdaterSink
from fraud_detection.features.definitions import CUSTOMER_INTRADAY

log = logging.getLogger(__name__)
LAST_TX = CUSTOMER_INTRADAY[-1]
VIEWS = ("customer_daily", "customer_intraday", "terminal_daily")


class IntradayWriter:
    """Write-behind of customers' intraday rows: `put` returns at once; `pending` serves this process's reads."""

    def __init__(self, sink: OnlineUpdaterSink, interval_s: float = 0.002) -> None:
        self._sink, self._interval = sink, interval_s
        self._pending: dict[int, dict] = {}  # customer -> latest row not yet written
        self._lock, self._wake, self._stop = threading.Lock(), threading.Event(), threading.Event()
        self.written = self.failures = 0
        self.healthy = True  # the last write succeeded
        self._thread = threading.Thread(target=self._run, name="intraday-writer", daemon=True)
        self._thread.start()

    def put(self, rows: dict[int, dict]) -> None:
        """Customers' new rows (one lock and one wake-up for all of them)."""
        with self._lock:
            for customer_id, row in rows.items():
                held = self._pending.get(customer_id)
                if held is None or held[LAST_TX] <= row[LAST_TX]:
                    self._pending[customer_id] = row
        self._wake.set()

    def pending(self, customer_id: int) -> dict | None:
        return self._pending.get(customer_id)

    def flush(self) -> None:
        """Write what is pending now (the background thread calls it; `close` once more)."""
        with self._lock:
            batch = dict(self._pending)
        if not batch:
            return
        try:
            self._sink.intraday(batch)
        except OnlineStoreUnavailable as error:
            if self.healthy:
                log.warning("online store unwritable; %d intraday rows kept pending: %s", len(batch), error)
            self.failures += 1
            self.healthy = False
            return
        self.healthy, self.written = True, self.written + len(batch)
        with self._lock:  # drop what was written, unless a newer row arrived meanwhile
            for customer, row in batch.items():
                if self._pending.get(customer) is row:
                    del self._pending[customer]

    def close(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout_s)
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            self.flush()
            if not self.healthy:  # the store is down: retry at a gentle pace
                self._stop.wait(0.5)
            else:
                self._stop.wait(self._interval)  # let a few rows gather into one write


class StoreFeatures:
    """The detector's feature source on a Feast store (reads through `reader`, writes through `writer_store`, a
    second store object over the same configuration)."""

    def __init__(
        self, reader: Any, writer_store: Any, feature_service: str, write_interval_s: float = 0.002,
        cache_entries: int = 200_000,
    ) -> None:  # fmt: skip
        prepare_sqlite(writer_store, DAILY_VIEWS)
        self._online = OnlineFeatures(reader, feature_service, DAILY_VIEWS, cache_entries)
        if sorted(self._online.view_names) != sorted(VIEWS):
            raise ValueError(f"feature service {feature_service} reads {self._online.view_names}; expected {VIEWS}")
        self.writer = IntradayWriter(OnlineUpdaterSink(writer_store), write_interval_s)

    def state(self, customer_id: int, terminal_id: int) -> dict[str, Any]:
        """The stored state for a transaction (None where unknown). Raises OnlineStoreUnavailable."""
        customer, intraday, terminal = self.states([customer_id], [terminal_id])
        return customer[0] | intraday[0] | terminal[0]

    def states(self, customer_ids: Sequence[int], terminal_ids: Sequence[int]) -> tuple[list, list, list]:
        """For many transactions: their customers' daily rows, intraday rows and terminals' daily rows, in one
        round trip."""
        held = [self.writer.pending(c) for c in customer_ids]  # before the read: a write may land during it
        rows = self._online.read({"customer_daily": customer_ids, "customer_intraday": customer_ids,
                                  "terminal_daily": terminal_ids})  # fmt: skip
        intraday = [_newest(s, h) for s, h in zip(rows["customer_intraday"], held, strict=True)]
        return rows["customer_daily"], intraday, rows["terminal_daily"]

    def record(self, intraday_rows: dict[int, dict]) -> None:
        """Customers' intraday states after scored transactions (written behind the response)."""
        self.writer.put(intraday_rows)

    @property
    def writable(self) -> bool:
        return self.writer.healthy

    @property
    def write_failures(self) -> int:
        return self.writer.failures

    def close(self) -> None:
        self.writer.close()


def _newest(stored: dict, held: dict | None) -> dict:
    """This process's pending row wins over the stored one unless the store holds a later transaction."""
    if held is None or (stored[LAST_TX] is not None and stored[LAST_TX] > held[LAST_TX]):
        return stored
    return held
