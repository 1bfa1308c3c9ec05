"""Shared fixtures: the project's own configuration (params.yaml and the catalog) read the way Kedro reads it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import polars as pl
import pytest
from kedro.config import OmegaConfigLoader
from pydantic import BaseModel

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pyspark.sql import SparkSession

from fraud_detection.features import polars_engine
from fraud_detection.models.params import TrainParams
from fraud_detection.runtime.params import Params, ParamsError, checked_params
from fraud_detection.runtime.project import config_loader as project_config_loader
from fraud_detection.runtime.project import project_params
from fraud_detection.runtime.spark import SparkParams, get_spark
from fraud_detection.runtime.telemetry import disable_telemetry
from fraud_detection.simulation.params import SimulateParams
from fraud_detection.simulation.simulator import SimulationConfig, simulate_transactions

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# A small local session for the `spark` tests; loopback only.
SPARK_TEST_PARAMS = SparkParams(
    master="local[2]",
    app_name="fraud_detection_tests",
    conf={
        "spark.sql.shuffle.partitions": "4",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
    },
    exchange_dir=None,
)
M = TypeVar("M", bound=BaseModel)


def params_problem(raw: dict[str, Any], block: str, **changes: Any) -> str:
    """The ParamsError message for params.yaml (`raw`: `config_loader["parameters"]`) with `block`'s keys changed."""
    with pytest.raises(ParamsError) as error:
        checked_params({**raw, block: {**raw[block], **changes}})
    return str(error.value)


def changed(model: M, **changes: Any) -> M:
    """`model` with some values changed, checked like params.yaml: a mapping given for a nested model changes only
    the keys it names (`trainer={"devices": 2}`); any other value, a mapping field's included, replaces it."""
    values = model.model_dump()
    for name, value in changes.items():
        nested = getattr(model, name, None)
        values[name] = changed(nested, **value).model_dump() if isinstance(nested, BaseModel) and isinstance(
            value, dict) else value  # fmt: skip
    return type(model).model_validate(values)


disable_telemetry()
# BentoML's model store for this test session (bentoml resolves it on first use): never the user's ~/bentoml
os.environ.setdefault("BENTOML_HOME", tempfile.mkdtemp(prefix="bentoml-tests-"))


@pytest.fixture(scope="session")
def config_loader() -> OmegaConfigLoader:
    return project_config_loader(PROJECT_ROOT)


@pytest.fixture(scope="session")
def params() -> Params:
    """params.yaml, checked and typed, as every stage reads it."""
    return project_params(root=PROJECT_ROOT)


@pytest.fixture(scope="session")
def small_simulate_params(params: Params) -> SimulateParams:
    """params.yaml `simulate`, switched to the small profile the tests use."""
    return changed(params.simulate, profile="small")


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """One Spark session for every `spark` test (it takes seconds to start)."""
    session = get_spark(SPARK_TEST_PARAMS)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def small_training_set(small_simulate_params: SimulateParams) -> pl.DataFrame:
    """The features table of a small simulated set: what the training set holds (the skew tests prove it)."""
    transactions = simulate_transactions(SimulationConfig.from_params(changed(small_simulate_params, seed=0)))
    return polars_engine.transaction_features(transactions, polars_engine.state_tables(transactions, 7))


@pytest.fixture(scope="session")
def small_champion(small_training_set: pl.DataFrame, small_train_params: TrainParams) -> Any:
    """A small trained candidate (a network alone, two epochs) with its lineage tags, for registering as champion."""
    from fraud_detection.pipelines.train.nodes import train_candidate

    return train_candidate(small_training_set, changed(small_train_params, max_epochs=2, boosting={"weight": 0.0}),
                           7, "v1")  # fmt: skip


@pytest.fixture(scope="session")
def small_train_params(params: Params) -> TrainParams:
    """params.yaml `train`, sized for tests: a small network, a few epochs."""
    return changed(params.train, window_days=21, hidden_sizes=[16], max_epochs=3, patience=2)
