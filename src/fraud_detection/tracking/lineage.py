"""Lineage: what produced a model, as short strings a run or a model version can carry."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import polars as pl

UNKNOWN = "unknown"


def git_commit() -> str:
    """The checked-out commit, suffixed `-dirty` when tracked files differ from it; `unknown` outside git."""
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return UNKNOWN
    return f"{commit}-dirty" if dirty else commit


def frame_hash(frame: pl.DataFrame) -> str:
    """A content hash of a table: the same rows and columns in the same order give the same hash."""
    digest = hashlib.sha256(",".join(f"{n}:{t}" for n, t in frame.schema.items()).encode())
    digest.update(frame.hash_rows(seed=0).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def params_hash(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def folder_bytes(folder: Path) -> int:
    """A model's size on disk: every file under its folder."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def flatten(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested params as `a.b.c` keys (MLflow params are flat strings)."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= flatten(value, f"{name}.")
        else:
            flat[name] = json.dumps(value) if isinstance(value, list | tuple) else str(value)
    return flat


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True, timeout=10).stdout.strip()
