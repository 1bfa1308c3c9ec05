"""A JSON dataset written atomically, with stable key order and a trailing newline (diff-friendly metrics)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

from fraud_detection.datasets.atomic import atomic_file


class JSONDataset(AbstractDataset[dict, dict]):
    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    def load(self) -> dict:
        return json.loads(self._filepath.read_text())

    def save(self, data: dict) -> None:
        with atomic_file(self._filepath) as tmp:
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}
