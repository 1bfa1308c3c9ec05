"""Shared fixtures: the project's own configuration (params.yaml and the catalog) read the way Kedro reads it."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader

from fraud_detection.offline import disable_telemetry
from fraud_detection.settings import CONFIG_LOADER_ARGS

PROJECT_ROOT = Path(__file__).resolve().parents[1]

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
