"""The prediction log's fast reader (`prediction_table`, the feedback stage's input): the same values as the record
by record reader, lines still being written left out, an empty table when nothing was logged."""

from __future__ import annotations

from datetime import timedelta, timezone
from pathlib import Path

import polars as pl

from fraud_detection.serving.prediction_log import (
    TABLE_SCHEMA,
    JsonLinesSink,
    PredictionTableDataset,
    read_json_lines,
    read_table,
    records_frame,
)
from tests.feedback.examples import at, example_records, record


def _log(folder: Path, records: list[dict]) -> None:
    sink = JsonLinesSink(folder)
    sink.write(records)
    sink.close()


def test_the_table_holds_what_the_record_reader_reads(tmp_path: Path) -> None:
    records = example_records()
    _log(tmp_path, records[:9])
    _log(tmp_path, records[9:])  # a second process's file
    fast = PredictionTableDataset(folder=str(tmp_path)).load()
    assert fast.schema == pl.Schema(TABLE_SCHEMA) and fast.height == len(records)
    slow = records_frame(read_json_lines(tmp_path)).with_columns(
        pl.col("time").str.to_datetime(time_zone="UTC", time_unit="us")
    )
    # records_frame's tx_amount is the feature's; it leaves the reasons out (they are the records' own)
    columns = [name for name in TABLE_SCHEMA if name not in ("tx_amount", "reasons")]
    assert fast.select(columns).sort("request_id").equals(slow.select(columns).sort("request_id"))
    by_request = {r["request_id"]: r["reasons"] for r in records}
    assert {r: list(why) for r, why in fast.select("request_id", "reasons").iter_rows()} == by_request


def test_times_with_an_offset_are_read_as_utc(tmp_path: Path) -> None:
    paris = at(1, 12).astimezone(timezone(timedelta(hours=2)))
    _log(tmp_path, [record(1, paris, 1, 1.0, 0.5, "approve")])
    assert read_table(tmp_path)["tx_datetime"].to_list() == [at(1, 12)]


def test_a_line_being_written_is_left_out(tmp_path: Path) -> None:
    _log(tmp_path, example_records()[:3])
    [path] = list(tmp_path.glob("predictions-*.jsonl"))
    with path.open("ab") as handle:
        handle.write(b'{"request_id": "half-writ')
    (tmp_path / "predictions-2018-09-02-0-1.jsonl").write_bytes(b'{"request_id": "only a part')
    assert read_table(tmp_path)["transaction_id"].to_list() == [1, 2, 3]


def test_nothing_logged_gives_an_empty_table(tmp_path: Path) -> None:
    (tmp_path / "predictions-2018-09-01-0-1.jsonl").touch()
    for folder in (tmp_path, tmp_path / "missing"):
        empty = read_table(folder)
        assert empty.height == 0 and empty.schema == pl.Schema(TABLE_SCHEMA)
