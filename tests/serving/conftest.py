"""Fixtures for the serving tests: the small Feast project of tests/feature_store, and a whole serving project on
disk (the project's conf and params, the Feast store materialized up to the last simulated day, an MLflow registry
with a champion and a challenger) for the service class and its ASGI app."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from tests.conftest import PROJECT_ROOT, changed
from tests.feature_store.conftest import LABEL_DELAY_DAYS, feature_root, label_events, offline_features, transactions

from fraud_detection.feature_store.dataset import FeatureStoreDataset, apply_and_materialize
from fraud_detection.feature_store.definitions import SOURCE_PATHS
from fraud_detection.feature_store.online import day_start
from fraud_detection.features import polars_engine
from fraud_detection.features.definitions import MICROS_PER_DAY

__all__ = ["feature_root", "label_events", "offline_features", "serving_project", "transactions"]
MODEL = "fraud-detector"


@dataclass(frozen=True)
class ServingProject:
    root: Path
    last_day: int  # the day the store was materialized up to (its transactions are not in the store yet)
    champion: int
    challenger: int

    @contextmanager
    def inside(self):
        """Run with the project root as the working directory (the catalog's paths are relative to it)."""
        before = Path.cwd()
        os.chdir(self.root)
        try:
            yield self.root
        finally:
            os.chdir(before)

    def registry(self):
        from fraud_detection.registry.registry import RegistryAddress

        uri = f"sqlite:///{self.root / 'data/mlflow/mlflow.db'}"
        return RegistryAddress(uri, str(self.root / "data/mlflow/registry.lock")).open(MODEL)


@pytest.fixture(scope="session")
def serving_project(
    tmp_path_factory, transactions: pl.DataFrame, small_training_set, small_train_params
) -> ServingProject:
    from fraud_detection.pipelines.train.nodes import train_candidate
    from fraud_detection.registry.candidate import CandidateDataset
    from fraud_detection.registry.promotion import force_promote
    from fraud_detection.registry.registry import RegistryAddress

    root = tmp_path_factory.mktemp("serving_project")
    for name in ("pyproject.toml", "params.yaml", ".telemetry"):
        shutil.copy2(PROJECT_ROOT / name, root / name)
    shutil.copytree(PROJECT_ROOT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    tables = polars_engine.with_stored_intraday(polars_engine.state_tables(transactions, LABEL_DELAY_DAYS))
    for name, table in tables._asdict().items():
        (root / SOURCE_PATHS[name]).parent.mkdir(parents=True, exist_ok=True)
        table.write_parquet(root / SOURCE_PATHS[name])
    last_day = transactions["tx_datetime"].dt.epoch("us").max() // MICROS_PER_DAY
    project = ServingProject(root, last_day, champion=1, challenger=2)
    with project.inside():
        store = FeatureStoreDataset(
            "data/05_feature_store/registry.db",
            {"type": "sqlite", "path": "data/05_feature_store/online.db"},
            {"type": "duckdb"},
        ).load()  # fmt: skip (the catalog's entry)
        apply_and_materialize(store, day_start(last_day))
        uri = f"sqlite:///{root / 'data/mlflow/mlflow.db'}"
        registry = RegistryAddress(uri, str(root / "data/mlflow/registry.lock")).open(MODEL, create=True)
        for seed in (0, 1):
            params = changed(small_train_params, seed=seed, max_epochs=2)
            candidate = train_candidate(small_training_set, params, 7, "v1")
            CandidateDataset(str(root / f"candidate{seed}"), uri, "fraud-detection", str(root / "artifacts")).save(
                candidate
            )
            registry.register(candidate.run, {"git_commit": "test", "training_set_md5": f"seed{seed}"})
        force_promote(registry, project.champion, "tests", "serving fixture")
        registry.move("challenger", project.challenger, "promote", "tests", "serving fixture")
    return project
