"""Data tests on the default size: the statistics the handbook publishes for its simulated dataset
(1,754,155 transactions, 0.84 % fraud, 973 / 9,077 / 4,631 frauds by scenario; Le Borgne et al., 2022, 3.2)."""

from __future__ import annotations

import polars as pl
import pytest

from fraud_detection.simulation.simulator import SimulationConfig, simulate_transactions

HANDBOOK_TRANSACTIONS = 1_754_155
HANDBOOK_FRAUDS_BY_SCENARIO = {1: 973, 2: 9_077, 3: 4_631}


@pytest.fixture(scope="module")
def transactions(params) -> pl.DataFrame:
    simulate = params.simulate
    assert simulate.profile == "default", "params.yaml must default to the handbook's size"
    return simulate_transactions(SimulationConfig.from_params(simulate))


def test_volume_is_the_handbooks(transactions: pl.DataFrame) -> None:
    assert abs(transactions.height / HANDBOOK_TRANSACTIONS - 1) < 0.03


def test_fraud_rate_is_the_handbooks(transactions: pl.DataFrame) -> None:
    assert abs(100 * transactions["tx_fraud"].mean() - 0.84) < 0.1


@pytest.mark.parametrize("scenario", sorted(HANDBOOK_FRAUDS_BY_SCENARIO))
def test_frauds_by_scenario_are_the_handbooks(transactions: pl.DataFrame, scenario: int) -> None:
    count = (transactions["tx_fraud_scenario"] == scenario).sum()
    assert abs(count / HANDBOOK_FRAUDS_BY_SCENARIO[scenario] - 1) < 0.15
