"""A small Feast project on disk: the features stage's tables for the small simulated set, under a temp root."""

from __future__ import annotations

import uuid
from pathlib import Path

import polars as pl
import pytest

from fraud_detection.feature_store import dataset
from fraud_detection.feature_store.dataset import repo_config
from fraud_detection.feature_store.definitions import SOURCE_PATHS
from fraud_detection.features import polars_engine
from fraud_detection.simulation.params import SimulateParams
from fraud_detection.simulation.simulator import SimulationConfig, simulate_transactions
from tests.conftest import changed
from tests.features.replay import investigation_labels

LABEL_DELAY_DAYS = 7
REDIS = {"type": "redis", "connection_string": "127.0.0.1:6379,db=0"}


@pytest.fixture(scope="session")
def transactions(small_simulate_params: SimulateParams) -> pl.DataFrame:
    """45 days from 2018-04-01 of 300 customers and 600 terminals (the tests read those ranges and dates)."""
    size = {"n_customers": 300, "n_terminals": 600, "n_days": 45}
    simulate = changed(small_simulate_params, profiles={"small": size}, start_date="2018-04-01", seed=3)
    return simulate_transactions(SimulationConfig.from_params(simulate))


@pytest.fixture(scope="session")
def label_events(transactions: pl.DataFrame) -> pl.DataFrame:
    """Investigation labels (and some reported mid-day), known before the delay."""
    return investigation_labels(transactions)


@pytest.fixture(scope="session")
def offline_features(transactions: pl.DataFrame, label_events: pl.DataFrame) -> pl.DataFrame:
    tables = polars_engine.state_tables(transactions, LABEL_DELAY_DAYS, label_events)
    return polars_engine.transaction_features(transactions, tables)


@pytest.fixture(scope="session")
def feature_root(tmp_path_factory: pytest.TempPathFactory, transactions: pl.DataFrame, label_events) -> Path:
    """A project root holding the state tables (with the early labels) where the feature repo expects them."""
    root = tmp_path_factory.mktemp("feast")
    tables = polars_engine.state_tables(transactions, LABEL_DELAY_DAYS, label_events)
    tables = polars_engine.with_stored_intraday(tables)
    for name, table in tables._asdict().items():
        (root / SOURCE_PATHS[name]).parent.mkdir(parents=True, exist_ok=True)
        table.write_parquet(root / SOURCE_PATHS[name])
    return root


def open_store(root: Path, online: str, project: str | None = None):
    """A store over `root`'s tables, online in SQLite (a fresh file) or Redis (a fresh project namespace)."""
    name = project or f"fd_{uuid.uuid4().hex[:8]}"
    online_store = {"type": "sqlite", "path": f"data/{name}/online.db"} if online == "sqlite" else REDIS
    config = repo_config(f"data/{name}/registry.db", online_store, {"type": "duckdb"}, str(root), name)
    return dataset.open_store(config)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, feature_root: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh store over the small set's tables, online in SQLite or the real Redis on 127.0.0.1:6379.

    Runs from the feature root: Feast's duckdb store reads relative source paths from the working directory.
    """
    monkeypatch.chdir(feature_root)
    opened = open_store(feature_root, request.param)
    yield opened
    if request.param == "redis":
        opened.teardown()


@pytest.fixture
def sqlite_store(feature_root: Path, monkeypatch: pytest.MonkeyPatch):
    """A fresh store online in SQLite, for the faults only a file can have."""
    monkeypatch.chdir(feature_root)
    return open_store(feature_root, "sqlite")
