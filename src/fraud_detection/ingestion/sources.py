"""Reading a source (the simulator's output or the user's parquet/CSV files) and mapping its columns to ours."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from fraud_detection.ingestion.errors import IngestionError
from fraud_detection.ingestion.schema import FIELD_NAMES, REQUIRED_FIELDS, ROW_NUMBER

SUFFIXES = {".parquet": "parquet", ".csv": "csv"}


def read_files(path: str | Path) -> pl.DataFrame:
    """Read a parquet or CSV file, or every such file of a folder in name order. CSV columns stay text, so that
    coercion (and its error reporting) is the same whatever the file format."""
    path = Path(path)
    if not path.exists():
        raise IngestionError(f"ingest.source: {path} does not exist; expected a parquet or CSV file or a folder")
    files = sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES) if path.is_dir() else [path]
    if not files or any(p.suffix not in SUFFIXES for p in files):
        raise IngestionError(f"ingest.source: no .parquet or .csv files at {path}")
    frames = [_read_one(p) for p in files]
    return pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]


def _read_one(path: Path) -> pl.DataFrame:
    if SUFFIXES[path.suffix] == "parquet":
        return pl.read_parquet(path)
    return pl.read_csv(path, infer_schema=False)


def map_columns(raw: pl.DataFrame, column_map: dict[str, str]) -> tuple[pl.DataFrame, list[str]]:
    """Rename source columns to ours, number the rows, and drop the columns we do not know.

    Returns the mapped frame (row_number first) and the names of the dropped source columns.
    """
    unknown_keys = sorted(set(column_map) - set(raw.columns))
    if unknown_keys:
        raise IngestionError(
            f"ingest.column_map names source columns {unknown_keys} that the source does not have; "
            f"the source has {raw.columns}"
        )
    renamed = raw.rename(column_map)
    missing = [name for name in REQUIRED_FIELDS if name not in renamed.columns]
    if missing:
        raise IngestionError(
            f"the source lacks required columns {missing} (after ingest.column_map); it has {raw.columns}. "
            f"Map them with ingest.column_map, e.g. {{SOURCE_NAME: {missing[0]}}}"
        )
    kept = [name for name in FIELD_NAMES if name in renamed.columns]
    dropped = [original for original, name in zip(raw.columns, renamed.columns, strict=True) if name not in kept]
    return renamed.select(kept).with_row_index(ROW_NUMBER).with_columns(pl.col(ROW_NUMBER).cast(pl.Int64)), dropped


def as_text(frame: pl.DataFrame) -> pl.DataFrame:
    """Every column as text, so quarantined rows keep their original values whatever their type."""
    return frame.with_columns(pl.exclude(ROW_NUMBER).cast(pl.String))
