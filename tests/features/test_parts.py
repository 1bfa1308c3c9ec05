"""The polars engine in parts (ranges of customers, terminals, then days) gives the one-part tables and features,
row for row, and a parquet file written part by part reads back as their concatenation."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from kedro.io import DatasetError
from polars.testing import assert_frame_equal

from fraud_detection.datasets import ParquetDataset
from fraud_detection.features import polars_engine
from fraud_detection.runtime.frame_parts import FrameParts, part_count, value_ranges, weighted_ranges
from fraud_detection.simulation.params import SimulateParams
from fraud_detection.simulation.simulator import SimulationConfig, simulate_transactions
from tests.conftest import changed
from tests.features.replay import investigation_labels

DELAY = 7


@pytest.fixture(scope="module")
def transactions(small_simulate_params: SimulateParams) -> pl.DataFrame:
    return simulate_transactions(SimulationConfig.from_params(changed(small_simulate_params, seed=3)))


@pytest.mark.parametrize("parts", [3, 7])
def test_state_tables_in_parts_equal_the_whole(transactions: pl.DataFrame, parts: int) -> None:
    events = investigation_labels(transactions)
    whole = polars_engine.state_tables(transactions, DELAY, events)
    in_parts = polars_engine.state_table_parts(transactions, DELAY, events, parts)
    for name, table in zip(polars_engine.StateTables._fields, in_parts, strict=True):
        pieces = list(table)
        assert len(pieces) == parts, name
        assert_frame_equal(pl.concat(pieces), getattr(whole, name))


def test_features_in_parts_of_days_equal_the_whole(transactions: pl.DataFrame, tmp_path: Path) -> None:
    tables = polars_engine.state_tables(transactions, DELAY)
    whole = polars_engine.transaction_features(transactions, tables)
    lazy = polars_engine.StateTables(*(table.lazy() for table in tables))
    parts = polars_engine.transaction_feature_parts(transactions, lazy, 4)
    assert [piece.height > 0 for piece in parts] == [True] * 4
    dataset = ParquetDataset(str(tmp_path / "features.parquet"), row_group_size=1000)
    dataset.save(parts)
    assert_frame_equal(dataset.load(), whole)


def test_a_failing_part_leaves_the_previous_file(tmp_path: Path) -> None:
    dataset = ParquetDataset(str(tmp_path / "table.parquet"))
    dataset.save(pl.DataFrame({"x": [1, 2]}))

    def parts():
        yield pl.DataFrame({"x": [3]})
        raise MemoryError("the second part")

    with pytest.raises(DatasetError, match="the second part"):
        dataset.save(FrameParts(parts))
    assert dataset.load()["x"].to_list() == [1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["table.parquet"], "no temporary file is left behind"


def test_ranges_cover_every_value_once() -> None:
    days = pl.Series("day", [5] * 10 + [6] * 10 + [7] * 1 + [9] * 19)
    assert weighted_ranges(days, 2) == [(5, 6), (7, 9)]
    assert weighted_ranges(days, 1) == [(5, 9)]
    assert value_ranges(pl.Series([4, 1, 3, 3, 2]), 2) == [(1, 2), (3, 4)]
    assert value_ranges(pl.Series([1, 2]), 5) == [(1, 1), (2, 2)], "never an empty range"
    assert [part_count(rows, 100) for rows in (0, 1, 100, 101)] == [1, 1, 1, 2]
