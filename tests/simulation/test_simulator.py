"""The simulator follows the handbook's rules and is deterministic for a seed."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from fraud_detection.runtime.params import ParamsError, checked_params
from fraud_detection.simulation.simulator import TRANSACTION_COLUMNS, SimulationConfig, simulate_transactions


@pytest.fixture(scope="module")
def config(small_simulate_params) -> SimulationConfig:
    return SimulationConfig.from_params(small_simulate_params)


@pytest.fixture(scope="module")
def transactions(config: SimulationConfig) -> pl.DataFrame:
    return simulate_transactions(config)


def test_same_seed_gives_identical_output(config: SimulationConfig, transactions: pl.DataFrame) -> None:
    assert_frame_equal(simulate_transactions(config), transactions)


def test_another_seed_gives_other_transactions(config: SimulationConfig, transactions: pl.DataFrame) -> None:
    other = simulate_transactions(dataclasses.replace(config, seed=config.seed + 1))
    assert not other.equals(transactions)


def test_columns_types_and_order(transactions: pl.DataFrame, config: SimulationConfig) -> None:
    assert tuple(transactions.columns) == TRANSACTION_COLUMNS
    assert transactions.schema["tx_datetime"] == pl.Datetime("us", "UTC")
    assert transactions["transaction_id"].to_list() == list(range(transactions.height))
    assert transactions["tx_datetime"].is_sorted()
    days = (transactions["tx_datetime"].dt.date() - config.start_date).dt.total_days()
    assert days.min() >= 0 and days.max() < config.n_days
    assert transactions["customer_id"].max() < config.n_customers
    assert transactions["terminal_id"].max() < config.n_terminals
    assert (transactions["tx_amount"] >= 0).all()


def test_volume_follows_the_poisson_rate(transactions: pl.DataFrame, config: SimulationConfig) -> None:
    """E[count] = customers x days x E[U(0, 4)] x P(0 < N(12 h, 20,000 s) < 24 h) = n x d x 2 x 0.969."""
    expected = config.n_customers * config.n_days * 2 * 0.969
    assert abs(transactions.height / expected - 1) < 0.1


def test_scenarios_follow_their_rules(transactions: pl.DataFrame, config: SimulationConfig) -> None:
    scenario, fraud = transactions["tx_fraud_scenario"], transactions["tx_fraud"]
    assert ((scenario > 0).cast(pl.Int8) == fraud).all(), "fraud iff a scenario applies"
    assert set(scenario.unique()) == {0, 1, 2, 3}
    assert (transactions.filter(scenario == 1)["tx_amount"] > config.fraud.amount_threshold).all()
    legit = transactions.filter(scenario == 0)
    assert (legit["tx_amount"] <= config.fraud.amount_threshold).all()


def test_compromised_terminal_frauds_last_the_compromise_window(
    transactions: pl.DataFrame, config: SimulationConfig
) -> None:
    """Scenario 2: a terminal's frauds come in runs of at most `terminal_compromise_days` per compromise."""
    day = (pl.col("tx_datetime").dt.date() - pl.lit(config.start_date)).dt.total_days()
    spans = (
        transactions.filter(pl.col("tx_fraud_scenario") == 2)
        .group_by("terminal_id")
        .agg((day.max() - day.min()).alias("span"), day.n_unique().alias("days"))
    )
    assert spans.height > 0
    assert (spans["days"] <= spans["span"] + 1).all()


def test_compromised_customers_amounts_are_inflated(transactions: pl.DataFrame) -> None:
    """Scenario 3 multiplies amounts by 5: those frauds are far above the customer's usual spending."""
    usual = transactions.filter(pl.col("tx_fraud") == 0).group_by("customer_id").agg(pl.col("tx_amount").median())
    frauds = transactions.filter(pl.col("tx_fraud_scenario") == 3).join(usual, on="customer_id", suffix="_usual")
    ratio = (frauds["tx_amount"] / frauds["tx_amount_usual"]).median()
    assert 3 < ratio < 7


def test_unknown_profile_is_a_clear_error(config_loader) -> None:
    raw = config_loader["parameters"]
    message = "params.yaml simulate: expected profile one of ['default', 'large', 'medium', 'small']"
    with pytest.raises(ParamsError, match=re.escape(message)):
        checked_params({**raw, "simulate": {**raw["simulate"], "profile": "huge"}})


def test_customers_only_use_terminals_within_the_radius(config: SimulationConfig) -> None:
    """Re-derive the grid from the seed and check every (customer, terminal) pair is within `radius`."""
    rng = np.random.default_rng(config.seed)
    customer_xy = rng.uniform(0, 100, size=(config.n_customers, 2))
    rng.uniform(5, 100, size=config.n_customers), rng.uniform(0, 4, size=config.n_customers)
    terminal_xy = rng.uniform(0, 100, size=(config.n_terminals, 2))
    pairs = simulate_transactions(config).select("customer_id", "terminal_id").unique()
    distance = np.linalg.norm(
        customer_xy[pairs["customer_id"].to_numpy()] - terminal_xy[pairs["terminal_id"].to_numpy()], axis=1
    )
    assert distance.max() < config.radius
