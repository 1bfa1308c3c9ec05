"""Polars parquet datasets: one file, or one folder with a file per day; both written atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from kedro.io import AbstractDataset

from fraud_detection.datasets.atomic import atomic_file, atomic_folder
from fraud_detection.runtime.frame_parts import FrameParts

# Fixed writer settings so that the same frame always gives the same bytes (DVC hashes stay put).
WRITE_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 3, "statistics": True}


class ParquetDataset(AbstractDataset[pl.DataFrame | FrameParts, pl.DataFrame | pl.LazyFrame]):
    """One parquet file. `lazy: true` loads a LazyFrame, so an unused input costs nothing. `row_group_size`: rows
    per row group (smaller groups let a filtered read, such as one day of a time-sorted table, skip more). Saving
    `FrameParts` writes each part as it is made, so only one part is ever in memory."""

    def __init__(
        self,
        filepath: str,
        lazy: bool = False,
        row_group_size: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = Path(filepath)
        self._lazy = lazy
        self._write_options = {**WRITE_OPTIONS, **({"row_group_size": row_group_size} if row_group_size else {})}
        self.metadata = metadata

    def load(self) -> pl.DataFrame | pl.LazyFrame:
        frame = pl.scan_parquet(self._filepath)
        return frame if self._lazy else frame.collect()

    def save(self, data: pl.DataFrame | FrameParts) -> None:
        with atomic_file(self._filepath) as tmp:
            if isinstance(data, FrameParts):
                self._write_parts(data, tmp)
            else:
                data.write_parquet(tmp, **self._write_options)

    def _write_parts(self, parts: FrameParts, path: Path) -> None:
        """The parts one after the other into one file, with the writer settings of `write_parquet`."""
        import pyarrow.parquet as pq

        options = self._write_options
        writer = None
        try:
            for part in parts:
                table = part.to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(path, table.schema, compression=options["compression"],
                                              compression_level=options["compression_level"],
                                              write_statistics=options["statistics"])  # fmt: skip
                writer.write_table(table.cast(writer.schema), row_group_size=options.get("row_group_size"))
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise ValueError(f"no part to write to {self._filepath}; expected at least one")

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "lazy": self._lazy}


class PartitionedParquetDataset(AbstractDataset[pl.DataFrame, pl.DataFrame | pl.LazyFrame]):
    """A folder `date=YYYY-MM-DD/part-0.parquet`, one file per UTC day of `partition_column`.

    Every file holds all columns (the date is not moved into the path), so a single partition is
    self-contained; partitions are read back in date order.
    """

    def __init__(
        self,
        path: str,
        partition_column: str,
        lazy: bool = False,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._path = Path(path)
        self._partition_column = partition_column
        self._lazy = lazy
        self.metadata = metadata

    def load(self) -> pl.DataFrame | pl.LazyFrame:
        files = sorted(self._path.glob("date=*/part-0.parquet"))
        if not files:
            raise FileNotFoundError(f"no partitions under {self._path}")
        frame = pl.scan_parquet(files, hive_partitioning=False)
        return frame if self._lazy else frame.collect()

    def save(self, data: pl.DataFrame) -> None:
        day = pl.col(self._partition_column).dt.date().alias("__day")
        with atomic_folder(self._path) as tmp:
            for (date,), part in data.with_columns(day).group_by("__day", maintain_order=True):
                folder = tmp / f"date={date.isoformat()}"
                folder.mkdir()
                part.drop("__day").write_parquet(folder / "part-0.parquet", **WRITE_OPTIONS)

    def _exists(self) -> bool:
        return any(self._path.glob("date=*/part-0.parquet"))

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "partition_column": self._partition_column}


class DatePartitionsDataset(AbstractDataset[dict[str, pl.DataFrame], pl.LazyFrame]):
    """A folder `date=YYYY-MM-DD/part-0.parquet` written a day at a time: saving {day: frame} replaces those days'
    files (each atomically) and leaves every other day as it is (backfills, re-scored days). `missing_ok`: loads
    None while there is no day yet."""

    def __init__(self, path: str, missing_ok: bool = False, metadata: dict[str, Any] | None = None) -> None:
        self._path, self._missing_ok = Path(path), missing_ok
        self.metadata = metadata

    def load(self) -> pl.LazyFrame | None:
        files = sorted(self._path.glob("date=*/part-0.parquet"))
        if not files and self._missing_ok:
            return None
        if not files:
            raise FileNotFoundError(f"no partitions under {self._path}")
        return pl.scan_parquet(files, hive_partitioning=False)

    def save(self, data: dict[str, pl.DataFrame]) -> None:
        self._path.mkdir(parents=True, exist_ok=True)  # also when there is no day to write: DVC wants the folder
        for day, frame in sorted(data.items()):
            with atomic_file(self._path / f"date={day}" / "part-0.parquet") as tmp:
                frame.write_parquet(tmp, **WRITE_OPTIONS)

    def _exists(self) -> bool:
        return any(self._path.glob("date=*/part-0.parquet"))

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
