"""Shared fixtures: the project's own configuration (params.yaml and the catalog) read the way Kedro reads it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from kedro.config import OmegaConfigLoader

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyspark.sql import SparkSession

from fraud_detection.offline import disable_telemetry
from fraud_detection.settings import CONFIG_LOADER_ARGS
from fraud_detection.spark import get_spark

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
