"""The per-card risk table, published to a key-value store for lookups (`GET /risk/{customer_id}`).

A card keeps the risk of the latest batch it appeared in (a batch of an earlier day never overwrites a later one).
A publication is atomic: readers see every card of the batch updated, or none (SQLite: one transaction on a WAL
database, so readers never wait; Redis: one MULTI/EXEC). The store also remembers each published batch (day,
model version, counts, its scores) for the no-op check and the next batch's gate. SQLite by default
(`sqlite:///data/...`), Redis in the production profile (`redis://host:port/db`).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import polars as pl
from kedro.io import AbstractDataset, DatasetError

CARD_FIELDS = ("risk", "transactions", "riskiest_transaction")
WRITE_CHUNK = 5_000
INT64 = (-(2**63), 2**63 - 1)  # SQLite's INTEGER


class RiskStoreUnavailable(RuntimeError):
    """The risk store cannot be read or written."""


@dataclass(frozen=True)
class Published:
    """One published batch."""

    day: str  # YYYY-MM-DD
    model_version: str
    transactions: int
    cards: int
    published_at: str


class RiskStore(Protocol):
    def published(self) -> dict[str, Published]: ...

    def scores(self, day: str) -> np.ndarray | None: ...

    def publish(self, day: str, model_version: str, cards: pl.DataFrame, scores: np.ndarray) -> Published: ...

    def lookup(self, customer_id: int) -> dict[str, Any] | None: ...

    def close(self) -> None: ...


def open_risk_store(location: str) -> RiskStore:
    if location.startswith("sqlite:///"):
        return SqliteRiskStore(Path(location.removeprefix("sqlite:///")))
    return RedisRiskStore(location)


class SqliteRiskStore:
    def __init__(self, path: Path) -> None:
        self._path = path.resolve()
        self._reader: sqlite3.Connection | None = None

    def published(self) -> dict[str, Published]:
        rows = self._read("SELECT day, model_version, transactions, cards, published_at FROM batches ORDER BY day")
        return {row[0]: Published(*row) for row in rows}

    def scores(self, day: str) -> np.ndarray | None:
        rows = self._read("SELECT scores FROM batches WHERE day = ?", (day,))
        return np.frombuffer(rows[0][0], dtype=np.float64).copy() if rows else None

    def lookup(self, customer_id: int) -> dict[str, Any] | None:
        if not INT64[0] <= int(customer_id) <= INT64[1]:
            return None  # no such card can be stored (SQLite would refuse the id: not an outage, nor found)
        rows = self._read("SELECT customer_id, risk, transactions, riskiest_transaction, day, model_version, "
                          "published_at FROM cards WHERE customer_id = ?", (int(customer_id),))  # fmt: skip
        if not rows:
            return None
        keys = ("customer_id", *CARD_FIELDS, "batch_date", "model_version", "published_at")
        return dict(zip(keys, rows[0], strict=True))

    def publish(self, day: str, model_version: str, cards: pl.DataFrame, scores: np.ndarray) -> Published:
        published = Published(day, str(model_version), len(scores), len(cards), _now())
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self._path, timeout=30)) as connection:
            _schema(connection)
            connection.execute("BEGIN IMMEDIATE")
            try:
                rows = [(c, r, n, t, day, published.model_version, published.published_at)
                        for c, r, n, t in cards.select("customer_id", *CARD_FIELDS).iter_rows()]  # fmt: skip
                for start in range(0, len(rows), WRITE_CHUNK):
                    self._upsert_cards(connection, rows[start : start + WRITE_CHUNK])
                connection.execute(
                    "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, ?, ?)",
                    (day, published.model_version, published.transactions, published.cards, published.published_at,
                     np.asarray(scores, dtype=np.float64).tobytes()),
                )  # fmt: skip
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
        return published

    @staticmethod
    def _upsert_cards(connection: sqlite3.Connection, rows: list[tuple]) -> None:
        connection.executemany(
            "INSERT INTO cards VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(customer_id) DO UPDATE SET"
            " risk = excluded.risk, transactions = excluded.transactions,"
            " riskiest_transaction = excluded.riskiest_transaction, day = excluded.day,"
            " model_version = excluded.model_version, published_at = excluded.published_at"
            " WHERE excluded.day >= cards.day",
            rows,
        )

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def _read(self, sql: str, arguments: tuple = ()) -> list[tuple]:
        if not self._path.is_file():
            return []  # nothing published yet
        try:
            if self._reader is None:
                self._reader = sqlite3.connect(f"file:{self._path}?mode=rw", uri=True, check_same_thread=False)
            return self._reader.execute(sql, arguments).fetchall()
        except sqlite3.OperationalError as error:
            if "no such table" in str(error):
                return []
            raise RiskStoreUnavailable(f"risk store {self._path} unreadable: {error}") from error


def _schema(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE IF NOT EXISTS cards (customer_id INTEGER PRIMARY KEY, risk REAL NOT NULL, "
                       "transactions INTEGER NOT NULL, riskiest_transaction INTEGER NOT NULL, day TEXT NOT NULL, "
                       "model_version TEXT NOT NULL, published_at TEXT NOT NULL)")  # fmt: skip
    connection.execute("CREATE TABLE IF NOT EXISTS batches (day TEXT PRIMARY KEY, model_version TEXT NOT NULL, "
                       "transactions INTEGER NOT NULL, cards INTEGER NOT NULL, published_at TEXT NOT NULL, "
                       "scores BLOB NOT NULL)")  # fmt: skip
    connection.commit()


class RedisRiskStore:
    """Hash `<prefix>:card:<customer_id>` per card, hash `<prefix>:batches` (day -> JSON), `<prefix>:scores:<day>`."""

    def __init__(self, url: str, prefix: str = "fraud_detection:risk") -> None:
        import redis

        self._redis, self._prefix = redis.Redis.from_url(url), prefix

    def published(self) -> dict[str, Published]:
        rows = self._call(self._redis.hgetall, f"{self._prefix}:batches")
        return {day.decode(): Published(**json.loads(value)) for day, value in sorted(rows.items())}

    def scores(self, day: str) -> np.ndarray | None:
        blob = self._call(self._redis.get, f"{self._prefix}:scores:{day}")
        return None if blob is None else np.frombuffer(blob, dtype=np.float64).copy()

    def lookup(self, customer_id: int) -> dict[str, Any] | None:
        row = self._call(self._redis.hgetall, f"{self._prefix}:card:{int(customer_id)}")
        if not row:
            return None
        values = {k.decode(): v.decode() for k, v in row.items()}
        return {
            "customer_id": int(customer_id),
            "risk": float(values["risk"]),
            "transactions": int(values["transactions"]),
            "riskiest_transaction": int(values["riskiest_transaction"]),
            "batch_date": values["day"],
            "model_version": values["model_version"],
            "published_at": values["published_at"],
        }

    def publish(self, day: str, model_version: str, cards: pl.DataFrame, scores: np.ndarray) -> Published:
        """One writer at a time (the stage): the later-day check reads first, then one MULTI/EXEC writes all."""
        published = Published(day, str(model_version), len(scores), len(cards), _now())
        ids = cards["customer_id"].to_list()
        with self._redis.pipeline(transaction=False) as pipe:
            for customer in ids:
                pipe.hget(f"{self._prefix}:card:{customer}", "day")
            held = pipe.execute()
        with self._redis.pipeline(transaction=True) as pipe:
            for (customer, risk, n, riskiest), stored in zip(cards.select("customer_id", *CARD_FIELDS).iter_rows(),
                                                             held, strict=True):  # fmt: skip
                if stored is None or stored.decode() <= day:
                    pipe.hset(f"{self._prefix}:card:{customer}", mapping={
                        "risk": repr(float(risk)), "transactions": int(n), "riskiest_transaction": int(riskiest),
                        "day": day, "model_version": published.model_version,
                        "published_at": published.published_at})  # fmt: skip
            pipe.set(f"{self._prefix}:scores:{day}", np.asarray(scores, dtype=np.float64).tobytes())
            pipe.hset(f"{self._prefix}:batches", day, json.dumps(published.__dict__))
            self._call(pipe.execute)
        return published

    def close(self) -> None:
        self._redis.close()

    def _call(self, method: Any, *args: Any) -> Any:
        import redis

        try:
            return method(*args)
        except redis.RedisError as error:
            raise RiskStoreUnavailable(f"risk store unreachable: {error}") from error


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RiskStoreDataset(AbstractDataset[None, RiskStore]):
    """The catalog entry `risk_store` (a store the batch stage publishes through and the service reads, like the
    model registry: not a file DVC tracks). `location`: sqlite:///<path> or redis://<host>:<port>/<db>."""

    def __init__(self, location: str, metadata: dict | None = None) -> None:
        if not location.startswith(("sqlite:///", "redis://")):
            raise ValueError(
                f"risk_store location {location!r}; expected sqlite:///<path> or redis://<host>:<port>/<db>"
            )
        self._location, self.metadata = location, metadata

    def load(self) -> RiskStore:
        return open_risk_store(self._location)

    def save(self, data: None) -> None:
        raise DatasetError("the risk store is written by publishing a batch (batch.risk_store), not saved")

    def _describe(self) -> dict[str, Any]:
        return {"location": self._location}
