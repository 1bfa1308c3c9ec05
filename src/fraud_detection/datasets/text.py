"""A folder of text files that grows run by run (reports named after their day): saving writes each given file
atomically and leaves the others in place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from fraud_detection.datasets.atomic import atomic_file


class TextFilesDataset(AbstractDataset[dict[str, str], dict[str, Path]]):
    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def load(self) -> dict[str, Path]:
        """File name -> path, for every file in the folder."""
        return {file.name: file for file in sorted(self._path.glob("*")) if file.is_file()}

    def save(self, data: dict[str, str]) -> None:
        self._path.mkdir(parents=True, exist_ok=True)
        for name, text in data.items():
            if Path(name).name != name:
                raise ValueError(f"report file name {name!r} has a folder in it; expected a plain file name")
            with atomic_file(self._path / name) as tmp:
                tmp.write_text(text, encoding="utf-8")

    def _exists(self) -> bool:
        return self._path.is_dir()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}
