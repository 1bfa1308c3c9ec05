"""Shared fixtures: the project's own configuration (params.yaml and the catalog) read the way Kedro reads it."""

from __future__ import annotations

import os
import tempfile
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pytest
from kedro.config import OmegaConfigLoader

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyspark.sql import SparkSession

from fraud_detection.features import polars_engine
from fraud_detection.runtime.spark import get_spark
from fraud_detection.runtime.telemetry import disable_telemetry
from fraud_detection.settings import CONFIG_LOADER_ARGS
from fraud_detection.simulation import SimulationConfig, simulate_transactions

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# A small local session for the `spark` tests; loopback only.
SPARK_TEST_PARAMS = {
    "master": "local[2]",
    "conf": {
        "spark.sql.shuffle.partitions": "4",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
    },
}

disable_telemetry()
# BentoML's model store for this test session (bentoml resolves it on first use): never the user's ~/bentoml
os.environ.setdefault("BENTOML_HOME", tempfile.mkdtemp(prefix="bentoml-tests-"))


@pytest.fixture(scope="session")
def config_loader() -> OmegaConfigLoader:
    return OmegaConfigLoader(str(PROJECT_ROOT / "conf"), **CONFIG_LOADER_ARGS)


@pytest.fixture(scope="session")
def params(config_loader: OmegaConfigLoader) -> dict:
    return config_loader["parameters"]


@pytest.fixture(scope="session")
def small_simulate_params(params: dict) -> dict:
    """params.yaml `simulate`, switched to the small profile the tests use."""
    return {**params["simulate"], "profile": "small"}


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """One Spark session for every `spark` test (it takes seconds to start)."""
    session = get_spark(SPARK_TEST_PARAMS)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def small_training_set() -> pl.DataFrame:
    """The features table of a small simulated set: what the training set holds (the skew tests prove it)."""
    config = SimulationConfig(n_customers=300, n_terminals=600, n_days=60, start_date=date(2018, 4, 1), seed=0)
    transactions = simulate_transactions(config)
    return polars_engine.transaction_features(transactions, polars_engine.state_tables(transactions, 7))


@pytest.fixture(scope="session")
def small_train_params(params: dict) -> dict:
    """params.yaml `train`, sized for tests: a small network, a few epochs."""
    return {**params["train"], "window_days": 21, "hidden_sizes": [16], "max_epochs": 3, "patience": 2}
