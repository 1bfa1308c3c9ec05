"""The simulate stage: params.yaml `simulate` (its selected profile) gives the transactions, through the Kedro
pipeline as `kedro run --pipelines simulate` hands it the typed params."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from polars.testing import assert_frame_equal

from fraud_detection.pipelines.simulate import create_pipeline
from fraud_detection.pipelines.simulate.nodes import simulate
from fraud_detection.runtime.params import Params
from fraud_detection.simulation.params import SimulateParams
from fraud_detection.simulation.simulator import TRANSACTION_COLUMNS, SimulationConfig, simulate_transactions
from tests.conftest import changed, params_problem
from tests.pipelines.kedro_catalog import param_entries


@pytest.fixture(scope="module")
def simulated(params: Params) -> pl.DataFrame:
    """The simulate pipeline run on params.yaml switched to the small profile."""
    output = MemoryDataset(copy_mode="assign")
    small = changed(params, simulate={"profile": "small"})
    catalog = DataCatalog({"simulated_transactions": output, **param_entries(create_pipeline(), small)})
    SequentialRunner().run(create_pipeline(), catalog)
    return output.load()


def test_the_pipeline_gives_the_small_profiles_transactions(simulated: pl.DataFrame, params: Params) -> None:
    size, start = params.simulate.profiles["small"], params.simulate.start_date
    assert simulated.columns == list(TRANSACTION_COLUMNS)
    assert (
        simulated["transaction_id"].to_list() == list(range(simulated.height)) and simulated["tx_datetime"].is_sorted()
    )
    days = simulated["tx_datetime"].dt.date()
    assert days.min() == start and days.max() == start + timedelta(days=size.n_days - 1)
    assert simulated["customer_id"].max() < size.n_customers and simulated["terminal_id"].max() < size.n_terminals
    assert set(simulated["tx_fraud_scenario"].unique()) == {0, 1, 2, 3}, "the handbook's three scenarios, no drift"
    assert (simulated["tx_fraud"] == (simulated["tx_fraud_scenario"] > 0)).all()


def test_the_node_is_the_simulator_on_the_selected_profile(
    simulated: pl.DataFrame, small_simulate_params: SimulateParams
) -> None:
    assert_frame_equal(simulate(small_simulate_params), simulated)
    expected = simulate_transactions(SimulationConfig.from_params(small_simulate_params))
    assert_frame_equal(simulated, expected)
    other_seed = simulate(changed(small_simulate_params, seed=small_simulate_params.seed + 1))
    assert not other_seed.equals(simulated), "the seed drives the draws"


def test_bad_simulate_params_are_named(config_loader) -> None:
    raw = config_loader["parameters"]
    assert params_problem(raw, "simulate", profile="huge") == (
        "params.yaml simulate: expected profile one of ['default', 'large', 'medium', 'small']"
    )
    assert params_problem(
        config_loader["parameters"], "simulate", drift=[{"kind": "amount_inflation", "start_day": 10}]
    ) == ("params.yaml simulate.drift[0].factor is missing; expected a number > 0")
