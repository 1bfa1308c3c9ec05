"""A table made a part at a time: a stage whose data outgrows memory computes and writes one part, then the next
(`ParquetDataset` writes the parts as one file). Parts are made when iterated, never held together."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class FrameParts:
    """The parts of one table, in order; `make` makes them anew on each iteration."""

    make: Callable[[], Iterator[pl.DataFrame]]

    def __iter__(self) -> Iterator[pl.DataFrame]:
        return self.make()

    def map(self, function: Callable[[pl.DataFrame], pl.DataFrame]) -> FrameParts:
        return FrameParts(lambda: (function(part) for part in self))

    def collect(self) -> pl.DataFrame:
        """Every part in one frame (for tests and small data)."""
        return pl.concat(list(self), how="vertical")


def part_count(rows: int, part_rows: int) -> int:
    """How many parts of at most about `part_rows` rows `rows` rows make (at least one)."""
    return max(1, math.ceil(rows / part_rows))


def value_ranges(values: pl.Series, parts: int) -> list[tuple]:
    """Closed ranges (first, last) of the sorted distinct `values`, `parts` of them with about equally many values
    (fewer when there are fewer values)."""
    distinct = values.unique().sort().to_numpy()
    return [(chunk[0], chunk[-1]) for chunk in np.array_split(distinct, parts) if len(chunk)]


def weighted_ranges(values: pl.Series, parts: int) -> list[tuple]:
    """Closed ranges (first, last) of the sorted distinct `values`, `parts` of them with about equally many rows of
    `values` each: consecutive days holding about the same number of transactions."""
    counts = values.value_counts(name="rows").sort(values.name)
    before = (counts["rows"].cum_sum() - counts["rows"]).to_numpy()
    part = np.minimum(before * parts // max(len(values), 1), parts - 1)
    keys = counts[values.name].to_numpy()
    return [(keys[part == p][0], keys[part == p][-1]) for p in np.unique(part)]
