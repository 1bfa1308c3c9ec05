"""Our datasets write atomically and deterministically."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from kedro.io import DatasetError
from polars.testing import assert_frame_equal

from fraud_detection.datasets import JSONDataset, ParquetDataset, PartitionedParquetDataset


@pytest.fixture
def frame() -> pl.DataFrame:
    start = datetime(2018, 4, 1, tzinfo=UTC)
    return pl.DataFrame({"tx_datetime": [start + timedelta(hours=7 * i) for i in range(20)], "value": list(range(20))})


class Boom(Exception):
    pass


@pytest.fixture
def crash_on_third_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parquet writes succeed twice, then the third dies half-way through its file."""
    real_write, calls = pl.DataFrame.write_parquet, []

    def write(self: pl.DataFrame, file, **kwargs) -> None:
        calls.append(file)
        if len(calls) == 3:
            Path(file).write_bytes(b"PAR1 half a file")
            raise Boom
        real_write(self, file, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", write)


def test_parquet_roundtrip_and_same_bytes(tmp_path: Path, frame: pl.DataFrame) -> None:
    first, second = ParquetDataset(str(tmp_path / "a.parquet")), ParquetDataset(str(tmp_path / "b.parquet"))
    first.save(frame)
    second.save(frame)
    assert_frame_equal(first.load(), frame)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_a_crash_while_writing_keeps_the_previous_file(
    tmp_path: Path, frame: pl.DataFrame, crash_on_third_write: None
) -> None:
    dataset = ParquetDataset(str(tmp_path / "a.parquet"))
    dataset.save(frame)
    dataset.save(frame)
    with pytest.raises(DatasetError) as error:
        dataset.save(frame.head(3))
    assert isinstance(error.value.__cause__, Boom)
    assert_frame_equal(dataset.load(), frame)
    assert [p.name for p in tmp_path.iterdir()] == ["a.parquet"], "no temporary file is left behind"


def test_partitioned_roundtrip_one_file_per_day(tmp_path: Path, frame: pl.DataFrame) -> None:
    dataset = PartitionedParquetDataset(str(tmp_path / "t"), partition_column="tx_datetime")
    dataset.save(frame)
    days = sorted(p.name for p in (tmp_path / "t").iterdir())
    assert days == [f"date=2018-04-0{d}" for d in range(1, 7)]
    assert_frame_equal(dataset.load(), frame)


def test_partitioned_replace_removes_stale_days(tmp_path: Path, frame: pl.DataFrame) -> None:
    dataset = PartitionedParquetDataset(str(tmp_path / "t"), partition_column="tx_datetime")
    dataset.save(frame)
    dataset.save(frame.head(3))
    assert sorted(p.name for p in (tmp_path / "t").iterdir()) == ["date=2018-04-01"]
    assert_frame_equal(dataset.load(), frame.head(3))


def test_partitioned_crash_mid_way_keeps_every_previous_day(
    tmp_path: Path, frame: pl.DataFrame, crash_on_third_write: None
) -> None:
    dataset = PartitionedParquetDataset(str(tmp_path / "t"), partition_column="tx_datetime")
    dataset.save(frame.head(3))  # one day: the first write
    with pytest.raises(DatasetError) as error:
        dataset.save(frame)  # six days: dies on the second of them
    assert isinstance(error.value.__cause__, Boom)
    assert_frame_equal(dataset.load(), frame.head(3))
    assert [p.name for p in tmp_path.iterdir()] == ["t"]


def test_json_is_stable_and_atomic(tmp_path: Path) -> None:
    dataset = JSONDataset(str(tmp_path / "m.json"))
    dataset.save({"b": 1, "a": 2})
    assert (tmp_path / "m.json").read_text() == '{\n  "a": 2,\n  "b": 1\n}\n'
    assert dataset.load() == {"a": 2, "b": 1}
