"""The handbook's baseline features (evaluation/handbook.py) equal their definitions computed the plainest way:
pandas' time-based rolling windows per customer and per terminal, as chapter 3.3 describes them."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import polars as pl
import pytest

from fraud_detection.evaluation.handbook import HANDBOOK_FEATURES, WINDOWS_DAYS, handbook_features
from fraud_detection.simulation.simulator import SimulationConfig, simulate_transactions
from tests.conftest import changed

DELAY_DAYS = 7


@pytest.fixture(scope="module")
def transactions(small_simulate_params) -> pl.DataFrame:
    config = SimulationConfig.from_params(changed(small_simulate_params, profiles={"small": {
        "n_customers": 150, "n_terminals": 300, "n_days": 50}}))  # fmt: skip
    return simulate_transactions(config)


def _by_rolling_windows(transactions: pl.DataFrame) -> pd.DataFrame:
    """The definitions, one entity at a time, with pandas' rolling windows over (t - N days, t]."""
    frame = transactions.to_pandas().sort_values(["tx_datetime", "transaction_id"])
    frame["tx_datetime"] = frame["tx_datetime"].dt.tz_localize(None)
    frame["TX_AMOUNT"] = frame["tx_amount"]
    frame["TX_DURING_WEEKEND"] = (frame["tx_datetime"].dt.weekday >= 5).astype(int)
    frame["TX_DURING_NIGHT"] = (frame["tx_datetime"].dt.hour <= 6).astype(int)
    parts = []
    for _, group in frame.groupby("customer_id"):
        rows = group.set_index("tx_datetime")
        for n in WINDOWS_DAYS:
            rolled = rows["tx_amount"].rolling(f"{n}d")
            rows[f"CUSTOMER_ID_NB_TX_{n}DAY_WINDOW"] = rolled.count().to_numpy()
            rows[f"CUSTOMER_ID_AVG_AMOUNT_{n}DAY_WINDOW"] = (rolled.sum() / rolled.count()).to_numpy()
        parts.append(rows.reset_index())
    frame = pd.concat(parts).sort_values(["tx_datetime", "transaction_id"])
    parts = []
    for _, group in frame.groupby("terminal_id"):
        rows = group.set_index("tx_datetime")
        recent_tx = rows["tx_fraud"].rolling(f"{DELAY_DAYS}d").count()
        recent_frauds = rows["tx_fraud"].rolling(f"{DELAY_DAYS}d").sum()
        for n in WINDOWS_DAYS:
            count = rows["tx_fraud"].rolling(f"{DELAY_DAYS + n}d").count() - recent_tx
            frauds = rows["tx_fraud"].rolling(f"{DELAY_DAYS + n}d").sum() - recent_frauds
            rows[f"TERMINAL_ID_NB_TX_{n}DAY_WINDOW"] = count.to_numpy()
            rows[f"TERMINAL_ID_RISK_{n}DAY_WINDOW"] = (frauds / count).fillna(0).to_numpy()
        parts.append(rows.reset_index())
    return pd.concat(parts).sort_values("transaction_id").reset_index(drop=True)


def test_the_features_are_the_books_definitions(transactions: pl.DataFrame) -> None:
    ours = handbook_features(transactions, DELAY_DAYS)
    assert ours["transaction_id"].to_list() == transactions["transaction_id"].to_list(), "the input's row order"
    reference = _by_rolling_windows(transactions)
    ours = ours.sort("transaction_id")
    for name in HANDBOOK_FEATURES:
        np.testing.assert_allclose(ours[name].to_numpy(), reference[name].to_numpy(), rtol=1e-12, atol=1e-9,
                                   err_msg=name)  # fmt: skip


def test_windows_include_the_transaction_and_end_at_it() -> None:
    """Customer windows hold the transaction itself and what came before it within N days; the terminal's windows
    end `delay` days before it, so a fraud is counted only once its label is known."""
    at = [datetime(2018, 4, 1, 12, tzinfo=UTC), datetime(2018, 4, 2, 11, tzinfo=UTC),
          datetime(2018, 4, 10, 13, tzinfo=UTC)]  # fmt: skip
    frame = pl.DataFrame({"transaction_id": [0, 1, 2], "tx_datetime": at, "customer_id": [5, 5, 5],
                          "terminal_id": [9, 9, 9], "tx_amount": [10.0, 30.0, 50.0],
                          "tx_fraud": [1, 0, 0]})  # fmt: skip
    out = handbook_features(frame, DELAY_DAYS).to_dicts()
    assert [r["CUSTOMER_ID_NB_TX_1DAY_WINDOW"] for r in out] == [1, 2, 1], "23 h apart: same 1-day window"
    assert [r["CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW"] for r in out] == [10.0, 20.0, 50.0]
    assert [r["TERMINAL_ID_NB_TX_7DAY_WINDOW"] for r in out] == [0, 0, 2], "only 0 and 1 are 7+ days old"
    assert out[2]["TERMINAL_ID_RISK_7DAY_WINDOW"] == 0.5, "1 fraud of 2, in (t - 14 d, t - 7 d]"
    assert out[2]["TERMINAL_ID_NB_TX_1DAY_WINDOW"] == 0 and out[2]["TERMINAL_ID_RISK_1DAY_WINDOW"] == 0.0
    assert [r["TX_DURING_NIGHT"] for r in out] == [0, 0, 0]
