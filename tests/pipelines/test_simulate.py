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
from fraud_detection.simulation.simulator import (
    TRANSACTION_COLUMNS,
    SimulationConfig,
    compromise_schedule,
    simulate_transactions,
)
from tests.conftest import changed, params_problem
from tests.pipelines.kedro_catalog import param_entries


@pytest.fixture(scope="module")
def simulated(params: Params) -> pl.DataFrame:
    """The simulate pipeline run on params.yaml switched to the small profile."""
    output, schedule = MemoryDataset(copy_mode="assign"), MemoryDataset(copy_mode="assign")
    small = changed(params, simulate={"profile": "small"})
    catalog = DataCatalog({"simulated_transactions": output, "simulated_compromises": schedule,
                           **param_entries(create_pipeline(), small)})  # fmt: skip
    SequentialRunner().run(create_pipeline(), catalog)
    return output.load(), schedule.load()


def test_the_pipeline_gives_the_small_profiles_transactions(simulated: tuple, params: Params) -> None:
    simulated, compromises = simulated
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
    hit = compromises.filter(pl.col("scenario") == 2)  # each day's compromised terminals: frauds for 28 days
    assert hit["day"].to_list() == sorted(hit["day"].to_list()) and hit["day"].max() == size.n_days - 1
    first = simulated.filter(pl.col("terminal_id").is_in(hit.filter(pl.col("day") == 0)["entity_id"].implode()))
    window = first.filter(pl.col("tx_datetime").dt.date() < start + timedelta(days=7))
    assert window.height > 0 and (window["tx_fraud"] == 1).all()


def test_the_node_is_the_simulator_on_the_selected_profile(
    simulated: tuple, small_simulate_params: SimulateParams
) -> None:
    simulated, compromises = simulated
    config = SimulationConfig.from_params(small_simulate_params)
    transactions, schedule = simulate(small_simulate_params)
    assert_frame_equal(transactions, simulated)
    assert_frame_equal(schedule, compromises)
    assert_frame_equal(simulated, simulate_transactions(config))
    assert_frame_equal(compromises, compromise_schedule(config).as_frame())
    other_seed, _ = simulate(changed(small_simulate_params, seed=small_simulate_params.seed + 1))
    assert not other_seed.equals(simulated), "the seed drives the draws"


def test_bad_simulate_params_are_named(config_loader) -> None:
    raw = config_loader["parameters"]
    assert params_problem(raw, "simulate", profile="huge") == (
        "params.yaml simulate: expected profile one of ['default', 'large', 'medium', 'small']"
    )
    assert params_problem(
        config_loader["parameters"], "simulate", drift=[{"kind": "amount_inflation", "start_day": 10}]
    ) == ("params.yaml simulate.drift[0].factor is missing; expected a number > 0")
