"""Card transaction simulator after Le Borgne et al., "Reproducible Machine Learning for Credit Card Fraud
Detection - Practical Handbook" (ULB, 2022), chapter 3. Written from the published rules; no code copied."""

from fraud_detection.simulation.drift import AmountInflation, CardTesting, TerminalCluster
from fraud_detection.simulation.simulator import FraudScenarios, SimulationConfig, simulate_transactions

__all__ = [
    "AmountInflation",
    "CardTesting",
    "FraudScenarios",
    "SimulationConfig",
    "TerminalCluster",
    "simulate_transactions",
]
