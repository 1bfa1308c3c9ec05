"""A small source with one row of every kind of defect, and the reason each must be quarantined with."""

from __future__ import annotations

import polars as pl

GOOD = {
    "TX_ID": "100",
    "TX_DATETIME": "2018-04-02 10:00:00",
    "CUSTOMER_ID": "7",
    "TERMINAL_ID": "9",
    "TX_AMOUNT": "12.50",
    "TX_FRAUD": "0",
    "TX_FRAUD_SCENARIO": "0",
    "NOTE": "kept?",
}

# (column overrides, expected reason); transaction ids are unique unless the row tests duplicates.
DEFECTS: list[tuple[dict[str, str | None], str]] = [
    ({"TX_ID": None}, "transaction_id:missing"),
    ({"CUSTOMER_ID": "  "}, "customer_id:missing"),
    ({"TX_AMOUNT": None}, "tx_amount:missing"),
    ({"TX_FRAUD": None}, "tx_fraud:missing"),
    ({"TX_DATETIME": None}, "tx_datetime:missing"),
    ({"TERMINAL_ID": "T-9"}, "terminal_id:unparseable"),
    ({"CUSTOMER_ID": "-3"}, "customer_id:unparseable"),
    ({"TX_DATETIME": "yesterday"}, "tx_datetime:unparseable"),
    ({"TX_DATETIME": "2018-02-30 10:00:00"}, "tx_datetime:unparseable"),
    ({"TX_DATETIME": "2018-04-02 25:00:00"}, "tx_datetime:unparseable"),
    ({"TX_AMOUNT": "12,50"}, "tx_amount:unparseable"),
    ({"TX_AMOUNT": "NaN"}, "tx_amount:unparseable"),
    ({"TX_AMOUNT": "1e999"}, "tx_amount:not_finite"),
    ({"TX_AMOUNT": "-4.00"}, "tx_amount:negative"),
    ({"TX_AMOUNT": "2000000"}, "tx_amount:above_max"),
    ({"TX_FRAUD": "2"}, "tx_fraud:not_0_or_1"),
    ({"TX_FRAUD": "yes"}, "tx_fraud:unparseable"),
    ({"CUSTOMER_ID": "\u0661\u0662"}, "customer_id:unparseable"),  # Arabic-Indic digits
    ({"TX_FRAUD_SCENARIO": "-1"}, "tx_fraud_scenario:negative"),
    ({"TX_FRAUD": "1", "TX_FRAUD_SCENARIO": "300"}, "tx_fraud_scenario:above_max"),
    ({"TX_FRAUD_SCENARIO": "2"}, "tx_fraud_scenario:contradicts_label"),
    ({"TX_DATETIME": "1970-01-01 00:00:01"}, "tx_datetime:before_valid_from"),
    ({"TX_DATETIME": "2999-01-01T00:00:00Z"}, "tx_datetime:not_before_valid_to"),
    ({"TX_ID": "101"}, "transaction_id:duplicate"),  # 101 is also a good row, earlier in the file
]

# Timestamps in every accepted form, with the UTC instant each stands for.
GOOD_TIMESTAMPS = {
    "2018-04-02": "2018-04-02T00:00:00+00:00",
    "2018-04-02T10:00": "2018-04-02T10:00:00+00:00",
    "2018-04-02 10:00:00.25": "2018-04-02T10:00:00.250000+00:00",
    "2018-04-02T10:00:00.123456789Z": "2018-04-02T10:00:00.123456+00:00",
    "2018-04-02T12:00:00+02:00": "2018-04-02T10:00:00+00:00",
    "2018-04-02T05:30:00-0430": "2018-04-02T10:00:00+00:00",
    "2016-02-29 23:59:59": "2016-02-29T23:59:59+00:00",
}


def messy_source() -> tuple[pl.DataFrame, list[str]]:
    """Good rows (ids 101..) with varied timestamps, then one row per defect; all columns text, like a CSV.

    Returns the frame and the expected reason per row (None for a good row).
    """
    rows, reasons = [], []
    for i, stamp in enumerate(GOOD_TIMESTAMPS):
        rows.append({**GOOD, "TX_ID": str(101 + i), "TX_DATETIME": stamp})
        reasons.append(None)
    for i, (overrides, reason) in enumerate(DEFECTS):
        rows.append({**GOOD, "TX_ID": str(500 + i), **overrides})
        reasons.append(reason)
    return pl.DataFrame(rows, schema=dict.fromkeys(GOOD, pl.String)), reasons


COLUMN_MAP = {
    "TX_ID": "transaction_id",
    "TX_DATETIME": "tx_datetime",
    "CUSTOMER_ID": "customer_id",
    "TERMINAL_ID": "terminal_id",
    "TX_AMOUNT": "tx_amount",
    "TX_FRAUD": "tx_fraud",
    "TX_FRAUD_SCENARIO": "tx_fraud_scenario",
}
