"""The prediction log: every served and shadow prediction, for monitoring and A/B analysis.

`PredictionLog.record` never blocks a request: it puts the record on a bounded in-memory queue and returns; a
background thread writes batches to the sink (JSON lines under a folder by default, a Redis stream in the production
profile). When the queue is full the record is dropped and counted (`dropped`, exported in `/metrics`). `close`
drains the queue and flushes, so a clean shutdown loses nothing.

One record: request_id, time (UTC), transaction_id, customer_id, terminal_id, tx_datetime, features (the vector the
model saw), model_version, variant, role (served | shadow), score, decision, degraded, latency_ms.
"""

from __future__ import annotations

import io
import json
import os
import queue
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import orjson
import polars as pl
from kedro.io import AbstractDataset, DatasetError

STOP = object()
BATCH = 512
ORJSON = orjson.OPT_SERIALIZE_NUMPY  # orjson: ~1 us a record where json takes ~30 us (on the log thread's GIL time)


class Sink(Protocol):
    def write(self, records: list[dict[str, Any]]) -> None: ...

    def close(self) -> None: ...


class JsonLinesSink:
    """One file per UTC day and process start (`predictions-YYYY-MM-DD-<start>.jsonl`), appended and flushed per
    batch: a reader sees whole lines only (each batch is one write of complete lines)."""

    def __init__(self, folder: str | Path) -> None:
        self._folder = Path(folder)
        self._folder.mkdir(parents=True, exist_ok=True)
        self._start = f"{datetime.now(UTC).strftime('%H%M%S%f')}-{os.getpid()}"  # one file per worker process
        self._day, self._handle = None, None

    def write(self, records: list[dict[str, Any]]) -> None:
        day = datetime.now(UTC).date().isoformat()
        if day != self._day:
            self.close()
            self._day = day
            self._handle = (self._folder / f"predictions-{day}-{self._start}.jsonl").open("ab")
        self._handle.write(b"".join(orjson.dumps(r, default=str, option=ORJSON) + b"\n" for r in records))
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class RedisStreamSink:
    """XADD each record (JSON in field `record`) to a Redis stream, capped at about `max_length` entries."""

    def __init__(self, url: str, stream: str, max_length: int = 1_000_000) -> None:
        import redis

        self._redis = redis.Redis.from_url(url)
        self._stream, self._max_length = stream, max_length

    def write(self, records: list[dict[str, Any]]) -> None:
        pipe = self._redis.pipeline(transaction=False)
        for record in records:
            pipe.xadd(self._stream, {"record": orjson.dumps(record, default=str, option=ORJSON)},
                      maxlen=self._max_length, approximate=True)  # fmt: skip
        pipe.execute()

    def close(self) -> None:
        self._redis.close()


class PredictionLog:
    def __init__(self, sink: Sink, capacity: int = 100_000) -> None:
        self._sink = sink
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        # records waiting = enqueued - dequeued; each counter has one writer thread, so no lock is needed
        self._capacity, self._enqueued, self._dequeued = capacity, 0, 0
        self.dropped = 0  # records the full queue refused
        self.failed = 0  # records the sink could not write
        self.written = 0
        self._thread = threading.Thread(target=self._drain, name="prediction-log", daemon=True)
        self._thread.start()

    def record(self, record: dict[str, Any]) -> None:
        self.record_many([record])

    def record_many(self, records: list[dict[str, Any]]) -> None:
        """Queued as one item (a batch's records); refused whole, and counted, when the queue is full."""
        if self._enqueued - self._dequeued + len(records) > self._capacity:
            self.dropped += len(records)
            return
        self._enqueued += len(records)
        self._queue.put_nowait(records)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Return once everything queued before the call is written (a reader of the log sees it); TimeoutError
        if the writer has stopped or takes longer than `timeout_s`."""
        written = threading.Event()
        self._queue.put(written)
        if not self._thread.is_alive() or not written.wait(timeout_s):
            raise TimeoutError(f"the prediction log's writer did not write within {timeout_s} s (stopped or stuck)")

    def close(self, timeout_s: float = 30.0) -> None:
        """Write everything queued, then stop."""
        self._queue.put(STOP)
        self._thread.join(timeout_s)
        self._sink.close()

    def _drain(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is STOP for item in items)
            records = [record for item in items if isinstance(item, list) for record in item]
            self._dequeued += len(records)
            if records:
                self._write(records)
            for flushed in (item for item in items if isinstance(item, threading.Event)):
                flushed.set()
            if stop:
                return

    def _write(self, records: list[dict[str, Any]]) -> None:
        try:
            self._sink.write(records)
            self.written += len(records)
        except Exception:  # a sink failure must never reach a request; it is counted instead
            self.failed += len(records)


def read_json_lines(folder: str | Path) -> Iterable[dict[str, Any]]:
    """Every record under a JSON-lines log folder, file by file (for monitoring and A/B analysis)."""
    for path in sorted(Path(folder).glob("predictions-*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            yield from (json.loads(line) for line in handle if line.endswith("\n"))


class PredictionLogDataset(AbstractDataset[None, Sink]):
    """The catalog entry `prediction_log`: which sink the service writes to (load-only). `folder`: JSON lines under
    it (default); `redis_url` + `stream`: a Redis stream (production)."""

    def __init__(self, folder: str | None = None, redis_url: str | None = None, stream: str | None = None,
                 metadata: dict | None = None) -> None:  # fmt: skip
        if (folder is None) == (redis_url is None):
            raise ValueError("prediction_log needs either `folder` or `redis_url` (+ `stream`)")
        self._folder, self._redis_url, self._stream = folder, redis_url, stream or "predictions"
        self.metadata = metadata

    def load(self) -> Sink:
        return JsonLinesSink(self._folder) if self._folder else RedisStreamSink(self._redis_url, self._stream)

    def save(self, data: None) -> None:
        raise DatasetError("the prediction log is written by the serving process, not saved")

    def _describe(self) -> dict[str, Any]:
        return {"folder": self._folder, "redis_url": self._redis_url, "stream": self._stream}


def read_redis_stream(url: str, stream: str, count: int = 10_000) -> Iterable[dict[str, Any]]:
    """Every record of a Redis stream prediction log, oldest first, read in pages of `count`."""
    import redis

    client, start = redis.Redis.from_url(url), "-"
    try:
        while entries := client.xrange(stream, min=start, count=count):
            yield from (orjson.loads(fields[b"record"]) for _, fields in entries)
            start = "(" + entries[-1][0].decode()
    finally:
        client.close()


def records_frame(records: Iterable[dict[str, Any]]) -> pl.DataFrame:
    """Log records as a table: one column per record field, the feature vector spread into one column per feature,
    `tx_datetime` a UTC datetime. Empty (no columns) when there is no record."""
    rows = [{**{k: v for k, v in r.items() if k not in ("features", "reasons")}, **r["features"]} for r in records]
    if not rows:
        return pl.DataFrame()
    frame = pl.DataFrame(rows, infer_schema_length=None)
    return frame.with_columns(pl.col("tx_datetime").str.to_datetime(time_zone="UTC", time_unit="us"))


class PredictionRecordsDataset(AbstractDataset[None, pl.DataFrame]):
    """The catalog entry `prediction_records`: what the service logged (`prediction_log`'s folder or stream),
    read back as a table (load-only), for monitoring and A/B analysis."""

    def __init__(self, folder: str | None = None, redis_url: str | None = None, stream: str | None = None,
                 metadata: dict | None = None) -> None:  # fmt: skip
        if (folder is None) == (redis_url is None):
            raise ValueError("prediction_records needs either `folder` or `redis_url` (+ `stream`)")
        self._folder, self._redis_url, self._stream = folder, redis_url, stream or "predictions"
        self.metadata = metadata

    def load(self) -> pl.DataFrame:
        if self._folder:
            return records_frame(read_json_lines(self._folder))
        return records_frame(read_redis_stream(self._redis_url, self._stream))

    def save(self, data: None) -> None:
        raise DatasetError("the prediction log is written by the serving process, not saved")

    def _describe(self) -> dict[str, Any]:
        return {"folder": self._folder, "redis_url": self._redis_url, "stream": self._stream}


# -- the fast reader: the scalar fields of every record as a typed table, parsed by polars (the feedback stage)
# Parsed as logged (times as ISO strings); the feature vector is left out.
LOGGED_FIELDS: dict[str, pl.DataType] = {
    "request_id": pl.String(), "time": pl.String(), "role": pl.String(), "transaction_id": pl.Int64(),
    "tx_datetime": pl.String(), "customer_id": pl.Int64(), "terminal_id": pl.Int64(), "tx_amount": pl.Float64(),
    "fraud_probability": pl.Float64(), "decision": pl.String(), "model_version": pl.String(),
    "variant": pl.String(), "degraded": pl.Boolean(), "reasons": pl.List(pl.String()), "latency_ms": pl.Float64(),
}  # fmt: skip
TIME_FIELDS = ("time", "tx_datetime")
UTC_TIME = pl.Datetime("us", "UTC")
TABLE_SCHEMA: dict[str, pl.DataType] = {name: UTC_TIME if name in TIME_FIELDS else kind
                                        for name, kind in LOGGED_FIELDS.items()}  # fmt: skip
LOG_FILES = "predictions-*.jsonl"


def read_table(folder: str | Path) -> pl.DataFrame:
    """Every record under a JSON-lines log folder as a table with `TABLE_SCHEMA`, parsed by polars' JSON-lines
    reader (about 1.5 s a million records, where `records_frame` builds a dict per record). A last line still being
    written (no newline yet) is left out, as `read_json_lines` does; no file gives an empty table."""
    sources = [source for path in sorted(Path(folder).glob(LOG_FILES)) if (source := _whole_lines(path)) is not None]
    if not sources:
        return pl.DataFrame(schema=TABLE_SCHEMA)
    frames = [pl.scan_ndjson(source, schema=LOGGED_FIELDS) for source in sources]
    return _typed(pl.concat(frames, how="vertical")).collect()


def table_frame(records: Iterable[dict[str, Any]]) -> pl.DataFrame:
    """Log records (dicts, e.g. from `read_redis_stream`) as a table with `TABLE_SCHEMA`."""
    rows = [{name: record.get(name) for name in LOGGED_FIELDS} for record in records]
    return _typed(pl.DataFrame(rows, schema=LOGGED_FIELDS, orient="row").lazy()).collect()


def _typed(logged: pl.LazyFrame) -> pl.LazyFrame:
    return logged.with_columns(pl.col(TIME_FIELDS).str.to_datetime(time_zone="UTC", time_unit="us"))


def _whole_lines(path: Path) -> Path | io.BytesIO | None:
    """The file itself when it ends with a newline, else its whole lines (None when it holds none)."""
    with path.open("rb") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return None
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return path
        handle.seek(0)
        data = handle.read()
    end = data.rfind(b"\n") + 1
    return io.BytesIO(data[:end]) if end else None


class PredictionTableDataset(PredictionRecordsDataset):
    """The catalog entry `prediction_table`: the prediction log's records, their scalar fields typed
    (`TABLE_SCHEMA`; the feature vector left out), for the feedback and monitor stages (load-only). The
    JSON-lines folder is parsed by polars; the Redis stream is read record by record."""

    def load(self) -> pl.DataFrame:
        if self._folder:
            return read_table(self._folder)
        return table_frame(read_redis_stream(self._redis_url, self._stream))
