"""Prediction log records and label events built by hand, shaped as the service and the traffic run write them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import polars as pl

from fraud_detection.feedback.labels import events_frame, label_event
from fraud_detection.serving.prediction_log import table_frame

DAY_1 = datetime(2018, 9, 1, tzinfo=UTC)


def at(day: int, hour: float = 12.0) -> datetime:
    """A moment of simulated day `day` (1 = DAY_1)."""
    return DAY_1 + timedelta(days=day - 1, hours=hour)


def record(transaction_id: int, when: datetime, customer_id: int, amount: float, probability: float, decision: str,
           role: str = "served", variant: str = "A", model_version: str = "1") -> dict[str, Any]:  # fmt: skip
    """One prediction log record, every field the service logs."""
    return {"request_id": f"r-{role}-{transaction_id}", "time": (when + timedelta(seconds=1)).isoformat(),
            "role": role, "transaction_id": transaction_id, "tx_datetime": when.isoformat(),
            "customer_id": customer_id, "terminal_id": 10 + customer_id, "tx_amount": amount,
            "features": {"tx_amount": amount, "customer_nb_tx_1d": 1.0}, "fraud_probability": probability,
            "decision": decision, "model_version": model_version, "variant": variant, "degraded": False,
            "reasons": [], "latency_ms": 2.5}  # fmt: skip


def table(records: list[dict[str, Any]]) -> pl.DataFrame:
    """The records as the `prediction_table` dataset loads them."""
    return table_frame(records)


def events(*specs: tuple[int, int, datetime, str]) -> pl.DataFrame:
    """Label events (transaction_id, tx_fraud, known_at, source) as the `label_events` dataset loads them."""
    return events_frame(label_event(*spec) for spec in specs)


def example_records() -> list[dict[str, Any]]:
    """A served group (variant A, version 1) over two days, the second not matured (transaction 7 unlabelled),
    and the shadow scoring the same transactions."""
    served = [
        record(1, at(1, 9), 1, 100.0, 0.9, "decline"),
        record(2, at(1, 10), 2, 50.0, 0.7, "review"),
        record(3, at(1, 11), 3, 30.0, 0.6, "decline"),
        record(4, at(1, 12), 4, 20.0, 0.2, "approve"),
        record(5, at(1, 13), 5, 10.0, 0.1, "approve"),
        record(6, at(2, 9), 6, 200.0, 0.95, "decline"),
        record(7, at(2, 10), 7, 5.0, 0.3, "approve"),
    ]
    shadow = [r | {"role": "shadow", "variant": "shadow", "model_version": "2", "fraud_probability": 0.5,
                   "decision": "approve", "request_id": f"s-{r['transaction_id']}"} for r in served]  # fmt: skip
    return served + shadow


def example_events() -> pl.DataFrame:
    """Frauds: 1, 2, 4, 6; genuine: 3, 5; 7 unknown. Transaction 6 investigated the day it happened, then its
    chargeback; transaction 1 delivered twice; transaction 99 was never predicted."""
    delayed = [(1, 1), (2, 1), (3, 0), (4, 1), (5, 0), (6, 1), (1, 1), (99, 0)]
    return events(*[(tid, fraud, at(1, 9) + timedelta(days=8), "delayed") for tid, fraud in delayed],
                  (6, 1, at(2, 23), "investigation"))  # fmt: skip
