"""Lineage: what produced a model, as short strings a run or a model version can carry, so that a user can tell
from the version alone what produced it: the commit, the data and params hashes, the feature schema it expects
(names, types, ranges seen in training), the libraries it ran with, its size."""

from __future__ import annotations

import hashlib
import json
import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import Any

import polars as pl

from fraud_detection.features.definitions import FEATURES

UNKNOWN = "unknown"
LIBRARIES = ("torch", "pytorch-lightning", "lightgbm", "mlflow", "feast", "polars", "numpy", "scikit-learn")
# The feature service's definitions: the formulas and the Feast objects (read as files: importing feast takes seconds)
PACKAGE = Path(__file__).resolve().parents[1]
FEATURE_DEFINITIONS = ("features/definitions.py", "feature_store/definitions.py", "feature_store/on_demand.py")


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


def feature_schema(window: pl.DataFrame) -> list[dict[str, Any]]:
    """Per feature, in the model's order: name, type, and the range seen in the training window."""
    stats = window.select(
        *(pl.col(name).min().alias(f"{name}.min") for name in FEATURES),
        *(pl.col(name).max().alias(f"{name}.max") for name in FEATURES),
    ).row(0, named=True)
    return [
        {"name": name, "type": str(window.schema[name]), "min": stats[f"{name}.min"], "max": stats[f"{name}.max"]}
        for name in FEATURES
    ]


def feature_definitions_hash() -> str:
    """The feature service's version: a hash of the modules that define its features. Any change to a formula or a
    Feast definition gives a new version; a model version records the one it was trained with."""
    digest = hashlib.sha256()
    for relative in FEATURE_DEFINITIONS:
        digest.update((PACKAGE / relative).read_bytes())
    return digest.hexdigest()[:16]


def library_versions() -> dict[str, str]:
    return {name: version(name) for name in LIBRARIES}


def as_tags(values: dict[str, Any]) -> dict[str, str]:
    """MLflow tag values are strings: nested values as compact JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for k, v in values.items()}
