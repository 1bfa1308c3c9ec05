"""The polars engine against the features' definitions applied literally, transaction by transaction, to the raw
transactions (the other engines are proven equal to polars in test_engine_parity.py): the amounts' spread and
z-scores over the customer's windows, and the terminal's fraud run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from fraud_detection.features import polars_engine
from fraud_detection.features.definitions import CUSTOMER_WINDOWS, MICROS_PER_DAY, NO_FRAUD_DAYS, RUN_WINDOW_DAYS
from fraud_detection.simulation.params import SimulateParams
from fraud_detection.simulation.simulator import SimulationConfig, simulate_transactions

DELAY = 7


def literal_features(tx: pl.DataFrame, row: dict) -> dict[str, float]:
    """The new features of one transaction, from the raw transactions (every label known DELAY days after)."""
    t, day, delay = row["us"], row["us"] // MICROS_PER_DAY, DELAY * MICROS_PER_DAY
    out: dict[str, float] = {}
    customer = tx.filter(pl.col("customer_id") == row["customer_id"])
    for n in CUSTOMER_WINDOWS:
        amounts = customer.filter((pl.col("us") < t) & (pl.col("us") >= (day - n) * MICROS_PER_DAY))["tx_amount"]
        std = float(amounts.to_numpy().std()) if len(amounts) else 0.0
        out[f"customer_std_amount_{n}d"] = std
        out[f"tx_amount_zscore_customer_{n}d"] = (row["tx_amount"] - amounts.mean()) / std if std > 0 else 0.0
    start = (day - DELAY - RUN_WINDOW_DAYS) * MICROS_PER_DAY
    seen = tx.filter((pl.col("terminal_id") == row["terminal_id"]) & pl.col("us").is_between(start, t - delay))
    genuine = seen.filter(pl.col("tx_fraud") == 0)["us"]
    frauds = seen.filter(pl.col("tx_fraud") == 1)["us"]
    run = frauds.filter(frauds >= (genuine.max() if len(genuine) else start))
    out["terminal_fraud_run_length"] = len(run)
    out["terminal_fraud_run_days"] = (t - delay - run.min()) / MICROS_PER_DAY if len(run) else NO_FRAUD_DAYS
    out["terminal_days_since_fraud"] = (t - delay - frauds.max()) / MICROS_PER_DAY if len(frauds) else NO_FRAUD_DAYS
    return out


@pytest.fixture(scope="module")
def transactions(small_simulate_params: SimulateParams) -> pl.DataFrame:
    return simulate_transactions(SimulationConfig.from_params(small_simulate_params))


def test_the_engine_computes_the_definitions(transactions: pl.DataFrame) -> None:
    features = polars_engine.transaction_features(transactions, polars_engine.state_tables(transactions, DELAY))
    tx = transactions.with_columns(us=pl.col("tx_datetime").dt.epoch("us"))
    sample = features.join(tx.select("transaction_id", "us"), on="transaction_id").sample(400, seed=0)
    runs = 0
    for row in sample.iter_rows(named=True):
        expected = literal_features(tx, row)
        assert {name: row[name] for name in expected} == pytest.approx(expected, rel=1e-9, abs=1e-9), row
        runs += expected["terminal_fraud_run_length"] > 0
    assert runs >= 10, "the sample holds fraud runs"


def _one_terminal(events: list[tuple[datetime, int]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"transaction_id": range(len(events)), "tx_datetime": [e[0] for e in events], "customer_id": range(len(events)),
         "terminal_id": [1] * len(events), "tx_amount": [10.0] * len(events), "tx_fraud": [e[1] for e in events]},
        schema_overrides={"tx_datetime": pl.Datetime("us", "UTC"), "tx_fraud": pl.Int8},
    )  # fmt: skip


def test_a_fraud_run_grows_until_a_genuine_transaction_ends_it() -> None:
    """A terminal's frauds known on days 1-3 (a fraud and a genuine one at the same instant on day 2: the fraud
    counts as after it), then a genuine one on day 4: scored DELAY days after each."""
    day0 = datetime(2018, 4, 1, 12, tzinfo=UTC)
    history = [(day0, 1), (day0 + timedelta(days=1), 0), (day0 + timedelta(days=1), 1), (day0 + timedelta(days=2), 1),
               (day0 + timedelta(days=3), 0)]  # fmt: skip
    probes = [day0 + timedelta(days=DELAY + d, hours=1) for d in (0, 1, 2, 3)]
    tx = _one_terminal(history + [(t, 0) for t in probes])
    features = polars_engine.transaction_features(tx, polars_engine.state_tables(tx, DELAY))
    scored = features.filter(pl.col("transaction_id") >= len(history)).sort("tx_datetime")
    assert scored["terminal_fraud_run_length"].to_list() == [1, 1, 2, 0]
    assert scored["terminal_fraud_run_days"].to_list() == pytest.approx([1 / 24, 1 / 24, 1 + 1 / 24, NO_FRAUD_DAYS])
    assert scored["terminal_days_since_fraud"].to_list() == pytest.approx([1 / 24, 1 / 24, 1 / 24, 1 + 1 / 24])
    assert np.all(scored["terminal_risk_30d"].to_numpy()[1:] > 0)
