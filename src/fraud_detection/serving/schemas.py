"""What `/predict` accepts and returns.

A transaction is checked by type (pydantic: integers are integers, the time is an ISO 8601 instant with a
timezone, no unknown fields) and by the same limits as ingestion (params.yaml `ingest`: accepted time range,
non-negative finite amounts up to `max_amount`). `with_limits` makes the model that checks both while it parses,
so a bad transaction is refused before it joins a batch; either failure is a 400 naming the field, the value and
what was expected, and nothing is scored or logged.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from fraud_detection.ingestion.schema import Limits

Decision = Literal["approve", "review", "decline"]


class InvalidTransaction(ValueError):
    """A transaction outside the accepted limits: the message names field, value and expectation."""


class Transaction(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)

    transaction_id: int = Field(ge=0, le=2**63 - 1)
    tx_datetime: AwareDatetime
    customer_id: int = Field(ge=0, le=2**63 - 1)
    terminal_id: int = Field(ge=0, le=2**63 - 1)
    tx_amount: float = Field(allow_inf_nan=True)  # checked by `check_limits`, with the limit in the message


class Prediction(BaseModel):
    transaction_id: int
    fraud_probability: float
    decision: Decision
    model_version: str  # the registry version that scored it ("rules" for the fallback)
    variant: str  # the A/B variant the customer is assigned to
    degraded: bool  # features defaulted (online store down, entity unknown) or the model fell back to rules
    reasons: list[str]  # why degraded, empty otherwise
    latency_ms: float


PREDICTIONS = TypeAdapter(list[Prediction])  # answer dicts validated at once (~1 us each); dumped to JSON at once


def check_limits(transaction: Transaction, limits: Limits) -> None:
    """The ingestion limits, applied to one request."""
    check_amount(transaction.tx_amount, limits)
    check_moment(transaction.tx_datetime, limits)


def check_amount(amount: float, limits: Limits) -> float:
    if not math.isfinite(amount) or amount < 0 or amount > limits.max_amount:
        raise InvalidTransaction(
            f"tx_amount={amount!r}; expected a finite amount between 0 and {limits.max_amount:g} "
            "(params ingest.max_amount)"
        )
    return amount


def check_moment(moment: datetime, limits: Limits) -> datetime:
    if not limits.valid_from <= moment < limits.valid_to:
        raise InvalidTransaction(
            f"tx_datetime={moment.isoformat()}; expected an instant from {limits.valid_from.isoformat()} to before "
            f"{limits.valid_to.isoformat()} (params ingest.valid_from/valid_to)"
        )
    return moment


def with_limits(limits: Limits) -> type[Transaction]:
    """A `Transaction` model that also applies `limits` while parsing (errors located at the field)."""

    class CheckedTransaction(Transaction):
        model_config = ConfigDict(title="Transaction")

        @field_validator("tx_amount")
        @classmethod
        def _amount(cls, value: float) -> float:
            return check_amount(value, limits)

        @field_validator("tx_datetime")
        @classmethod
        def _moment(cls, value: datetime) -> datetime:
            return check_moment(value, limits)

    return CheckedTransaction
