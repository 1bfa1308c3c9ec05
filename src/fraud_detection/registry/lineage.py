"""What a model version carries so that a user can tell, from the version alone, what produced it: the feature
schema it expects (names, types, ranges seen in training), the libraries it ran with, its size."""

from __future__ import annotations

import hashlib
import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import polars as pl

from fraud_detection.features.definitions import FEATURES

LIBRARIES = ("torch", "pytorch-lightning", "mlflow", "feast", "polars", "numpy", "scikit-learn")
# The feature service's definitions: the formulas and the Feast objects (read as files: importing feast takes seconds)
PACKAGE = Path(__file__).resolve().parents[1]
FEATURE_DEFINITIONS = ("features/definitions.py", "feature_repo/definitions.py")


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
