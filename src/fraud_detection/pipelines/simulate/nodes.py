"""Nodes of the `simulate` stage."""

import polars as pl

from fraud_detection.simulation.params import SimulateParams
from fraud_detection.simulation.simulator import SimulationConfig, simulate_transactions


def simulate(params: SimulateParams) -> pl.DataFrame:
    """Generate the default source of transactions from params.yaml `simulate`."""
    return simulate_transactions(SimulationConfig.from_params(params))
