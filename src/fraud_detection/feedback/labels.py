"""Label events and the label stream.

A label event is `{transaction_id, tx_fraud, known_at, source}`: a transaction's outcome and the moment it became
known, `delayed` (chargebacks and claims, `features.label_delay_days` after the transaction) or `investigation` (an
investigator checked the card the day it was served). Events are appended, never changed: JSON lines under a folder
by default (`labels-<start>-<pid>.jsonl`, each write whole lines), the Redis stream `fraud_detection:labels` in the
production profile. Both are read through one interface:
- `LabelStream.events()` every event, oldest first (the `feedback` stage's input, as a table: `events_frame`);
- `LabelStream.reader(group)` a consumer's at-least-once view: `poll(n)` returns the next events and a receipt,
  `ack(receipt)` stores that they were applied. A consumer that crashes before `ack` gets the same events again (the
  files: an offset per file stored in `<folder>_offsets/<group>.json` beside the folder, replaced atomically, so
  that the folder itself changes only when events are added; Redis: a consumer group, whose pending entries are
  claimed back on restart).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
import polars as pl
from kedro.io import AbstractDataset, DatasetError

from fraud_detection.datasets.atomic import atomic_file

SOURCES = ("delayed", "investigation")
FIELDS = ("transaction_id", "tx_fraud", "known_at", "source")
SCHEMA = {"transaction_id": pl.Int64, "tx_fraud": pl.Int8, "known_at": pl.Datetime("us", "UTC"), "source": pl.String}
PATTERN = "labels-*.jsonl"


class LabelError(ValueError):
    """A label event that breaks the schema (names the field, the value and what was expected)."""


def label_event(transaction_id: int, tx_fraud: int, known_at: datetime, source: str) -> dict[str, Any]:
    """One checked event (`known_at` a timezone-aware datetime, kept as an ISO string)."""
    if source not in SOURCES:
        raise LabelError(f"label event source={source!r}: expected one of {SOURCES}")
    if tx_fraud not in (0, 1):
        raise LabelError(f"label event tx_fraud={tx_fraud!r} (transaction {transaction_id}): expected 0 or 1")
    if known_at.tzinfo is None:
        raise LabelError(f"label event known_at={known_at!r} (transaction {transaction_id}): expected a UTC time")
    return {"transaction_id": int(transaction_id), "tx_fraud": int(tx_fraud),
            "known_at": known_at.astimezone(UTC).isoformat(), "source": source}  # fmt: skip


def events_frame(events: Iterable[dict[str, Any]]) -> pl.DataFrame:
    """Events as a table with `SCHEMA` (empty, with the columns, when there are none)."""
    rows = [{name: event[name] for name in FIELDS} for event in events]
    if not rows:
        return pl.DataFrame(schema=SCHEMA)
    frame = pl.DataFrame(rows, schema={**SCHEMA, "known_at": pl.String})
    return frame.with_columns(pl.col("known_at").str.to_datetime(time_zone="UTC", time_unit="us"))


@dataclass(frozen=True)
class Receipt:
    """What `ack` needs to mark a poll's events applied: file offsets, or Redis entry ids."""

    offsets: dict[str, int] | None = None
    ids: tuple[bytes, ...] = ()


class LabelReader(Protocol):
    def poll(self, count: int) -> tuple[list[dict[str, Any]], Receipt]: ...

    def acknowledged(self) -> Iterator[dict[str, Any]]: ...  # what this group acknowledged before, oldest first

    def ack(self, receipt: Receipt) -> None: ...

    def close(self) -> None: ...


class LabelStream(Protocol):
    def write(self, events: list[dict[str, Any]]) -> None: ...

    def events(self) -> Iterator[dict[str, Any]]: ...

    def reader(self, group: str) -> LabelReader: ...

    def close(self) -> None: ...


class LabelFiles:
    """The label stream as append-only JSON-lines files under `folder`."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._handle = None

    def write(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        if self._handle is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            start = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}-{os.getpid()}"
            self._handle = (self.folder / f"labels-{start}.jsonl").open("ab")
        self._handle.write(b"".join(orjson.dumps(event) + b"\n" for event in events))
        self._handle.flush()

    def events(self) -> Iterator[dict[str, Any]]:
        for path in sorted(self.folder.glob(PATTERN)):
            with path.open("rb") as handle:
                yield from (orjson.loads(line) for line in handle if line.endswith(b"\n"))

    def reader(self, group: str) -> LabelFileReader:
        return LabelFileReader(self.folder, group)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class LabelFileReader:
    """A consumer group's position in the files: bytes read of each file, stored when acknowledged."""

    def __init__(self, folder: Path, group: str) -> None:
        self._folder, self._store = folder, folder.with_name(f"{folder.name}_offsets") / f"{group}.json"
        self._acked: dict[str, int] = json.loads(self._store.read_text()) if self._store.exists() else {}
        self._read = dict(self._acked)  # polled, maybe not yet acknowledged

    def poll(self, count: int) -> tuple[list[dict[str, Any]], Receipt]:
        events: list[dict[str, Any]] = []
        for path in sorted(self._folder.glob(PATTERN)):
            if len(events) >= count:
                break
            start = self._read.get(path.name, 0)
            if path.stat().st_size <= start:
                continue
            with path.open("rb") as handle:
                handle.seek(start)
                position = start
                for line in handle:
                    if not line.endswith(b"\n") or len(events) >= count:
                        break  # a line being written, or enough
                    events.append(orjson.loads(line))
                    position += len(line)
            self._read[path.name] = position
        return events, Receipt(offsets=dict(self._read))

    def acknowledged(self) -> Iterator[dict[str, Any]]:
        for name, end in sorted(self._acked.items()):
            with (self._folder / name).open("rb") as handle:
                yield from (orjson.loads(line) for line in handle.read(end).splitlines())

    def ack(self, receipt: Receipt) -> None:
        self._acked = dict(receipt.offsets or {})
        with atomic_file(self._store) as temporary:
            temporary.write_text(json.dumps(self._acked, sort_keys=True))

    def close(self) -> None:
        pass


class LabelRedisStream:
    """The label stream as a Redis stream: XADD to write, XRANGE to read all, consumer groups to consume."""

    def __init__(self, url: str, stream: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self.url, self.stream = url, stream

    def write(self, events: list[dict[str, Any]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for event in events:
            pipe.xadd(self.stream, {"event": orjson.dumps(event)})
        pipe.execute()

    def events(self) -> Iterator[dict[str, Any]]:
        start = "-"
        while entries := self._redis.xrange(self.stream, min=start, count=10_000):
            yield from (orjson.loads(fields[b"event"]) for _, fields in entries)
            start = "(" + entries[-1][0].decode()

    def reader(self, group: str, consumer: str = "consumer-1") -> LabelRedisReader:
        return LabelRedisReader(self._redis, self.stream, group, consumer)

    def close(self) -> None:
        self._redis.close()


class LabelRedisReader:
    """A Redis consumer group member. On start it first re-reads its own pending entries (read before a crash, never
    acknowledged), then claims other consumers' entries pending for longer than `claim_idle_ms`, then new ones."""

    def __init__(self, client: Any, stream: str, group: str, consumer: str, claim_idle_ms: int = 60_000) -> None:
        import redis

        self._redis, self._stream, self._group, self._consumer = client, stream, group, consumer
        try:
            self._redis.xgroup_create(stream, group, id="0", mkstream=True)
        except redis.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._pending_from: str | None = "0"  # our own pending entries first, then new ones (">")
        self._claim_idle_ms = claim_idle_ms

    def poll(self, count: int) -> tuple[list[dict[str, Any]], Receipt]:
        entries = []
        if self._pending_from is not None:
            reply = self._redis.xreadgroup(self._group, self._consumer, {self._stream: self._pending_from}, count=count)
            entries = reply[0][1] if reply else []
            if entries:
                self._pending_from = entries[-1][0].decode()
            else:
                self._pending_from = None
                claimed = self._redis.xautoclaim(self._stream, self._group, self._consumer, self._claim_idle_ms,
                                                 start_id="0-0", count=count)  # fmt: skip
                entries = [entry for entry in claimed[1] if entry[1]]
        if not entries:
            reply = self._redis.xreadgroup(self._group, self._consumer, {self._stream: ">"}, count=count)
            entries = reply[0][1] if reply else []
        ids = tuple(entry_id for entry_id, _ in entries)
        return [orjson.loads(fields[b"event"]) for _, fields in entries], Receipt(ids=ids)

    def acknowledged(self) -> Iterator[dict[str, Any]]:
        """The entries delivered to the group and not pending (acknowledged), oldest first."""
        group = next(g for g in self._redis.xinfo_groups(self._stream) if g["name"].decode() == self._group)
        last, start = group["last-delivered-id"], "-"
        pending = {p["message_id"] for p in self._redis.xpending_range(self._stream, self._group, "-", "+", 10**9)}
        while entries := self._redis.xrange(self._stream, min=start, max=last, count=10_000):
            yield from (orjson.loads(fields[b"event"]) for entry_id, fields in entries if entry_id not in pending)
            start = "(" + entries[-1][0].decode()

    def ack(self, receipt: Receipt) -> None:
        if receipt.ids:
            self._redis.xack(self._stream, self._group, *receipt.ids)

    def close(self) -> None:
        pass


class LabelStreamDataset(AbstractDataset[None, LabelStream]):
    """The catalog entry `label_stream` (load-only): `folder` for the files (default), `redis_url` + `stream` for
    Redis (production)."""

    def __init__(self, folder: str | None = None, redis_url: str | None = None, stream: str | None = None,
                 metadata: dict | None = None) -> None:  # fmt: skip
        if (folder is None) == (redis_url is None):
            raise ValueError("label_stream needs either `folder` or `redis_url` (+ `stream`)")
        self._folder, self._redis_url, self._stream = folder, redis_url, stream or "fraud_detection:labels"
        self.metadata = metadata

    def load(self) -> LabelStream:
        return LabelFiles(self._folder) if self._folder else LabelRedisStream(self._redis_url, self._stream)

    def save(self, data: None) -> None:
        raise DatasetError("label events are published by `fraud-detection traffic run`, not saved by a stage")

    def _describe(self) -> dict[str, Any]:
        return {"folder": self._folder, "redis_url": self._redis_url, "stream": self._stream}


class LabelEventsDataset(LabelStreamDataset):
    """The catalog entry `label_events`: every event of the label stream as a table (`SCHEMA`), load-only."""

    def load(self) -> pl.DataFrame:  # type: ignore[override]
        stream = super().load()
        try:
            return events_frame(stream.events())
        finally:
            stream.close()
