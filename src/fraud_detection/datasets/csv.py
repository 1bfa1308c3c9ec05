"""CSV files written atomically: a folder of them (one per key, replaced as a whole: plot data that DVC renders),
or one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from kedro.io import AbstractDataset

from fraud_detection.datasets.atomic import atomic_file, atomic_folder


class CSVFolderDataset(AbstractDataset[dict[str, pl.DataFrame], dict[str, pl.DataFrame]]):
    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> dict[str, pl.DataFrame]:
        return {file.stem: pl.read_csv(file) for file in sorted(self._path.glob("*.csv"))}

    def save(self, data: dict[str, pl.DataFrame]) -> None:
        with atomic_folder(self._path) as folder:
            for name, frame in data.items():
                frame.write_csv(folder / f"{name}.csv", float_precision=6)

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}


class CSVDataset(AbstractDataset[pl.DataFrame, pl.DataFrame]):
    """One CSV file, replaced atomically (a small table meant for reading in git diffs)."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> pl.DataFrame:
        return pl.read_csv(self._filepath)

    def save(self, data: pl.DataFrame) -> None:
        with atomic_file(self._filepath) as tmp:
            data.write_csv(tmp, float_precision=6)

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
