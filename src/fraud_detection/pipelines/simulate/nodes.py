"""Nodes of the `simulate` stage."""

import polars as pl

from fraud_detection.simulation import SimulationConfig, simulate_transactions


def simulate(params: dict) -> pl.DataFrame:
    """Generate the default source of transactions from params.yaml `simulate`."""
    return simulate_transactions(SimulationConfig.from_params(params))
