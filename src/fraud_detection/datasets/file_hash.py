"""A file's content hash as DVC computes it (the md5 of its bytes, DVC 3), for lineage: a model version names the
exact training set file it came from, and `dvc.lock` shows the same hash."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

CHUNK = 1 << 20


class FileHashDataset(AbstractDataset[None, str]):
    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> str:
        digest = hashlib.md5(usedforsecurity=False)
        with self._filepath.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def save(self, data: None) -> None:
        raise DatasetError(f"{self._filepath}: a file hash is read-only")

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
