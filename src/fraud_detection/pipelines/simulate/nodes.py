"""Nodes of the `simulate` stage."""

import polars as pl

from fraud_detection.simulation.params import SimulateParams
from fraud_detection.simulation.simulator import SimulationConfig, simulate_run


def simulate(params: SimulateParams) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Generate the default source of transactions from params.yaml `simulate`, and the compromises drawn for it
    (which `fraud-detection traffic run` carries over into the days after the data)."""
    transactions, schedule = simulate_run(SimulationConfig.from_params(params))
    return transactions, schedule.as_frame()
