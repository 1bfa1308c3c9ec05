"""What the service accepts and returns: the bodies of `/predict`, `/predict_batch` and `/risk/{customer_id}`, and
of their errors (serving/openapi.py documents each route with these models' JSON schemas).

A transaction is checked by type (pydantic in strict mode: integers are JSON integers, `5` or `5.0` as JSON
Schema counts them, not `"5"`, `5.5` or `true`; amounts are JSON numbers; the time is an ISO 8601 instant with a
timezone; no unknown fields) and by the same limits as ingestion (params.yaml `ingest`: accepted time range,
non-negative finite amounts up to `max_amount`). `with_limits` makes the model that checks both while it parses, so
a bad transaction is refused before it joins a batch; either failure is a 400 naming the field, the value and what
was expected, and nothing is scored or logged.
Its JSON schema carries the limits too (`minimum`/`maximum` on the amount, a `pattern` on the time's date).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

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


class RiskCard(BaseModel):
    """`GET /risk/{customer_id}`: the card's row of the latest published batch it appeared in."""

    customer_id: int
    risk: float  # the card's highest fraud probability in that batch
    transactions: int  # the card's transactions in that batch
    riskiest_transaction: int  # the transaction_id that scored `risk`
    batch_date: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")  # the day the batch_predict stage scored
    model_version: str
    published_at: AwareDatetime  # when the batch was published


class ErrorDetail(BaseModel):
    """One problem of a refused request: pydantic's error entry (the service's and BentoML's)."""

    loc: list[str | int]  # where: the field, in a batch `["transactions", 3, "tx_amount"]`
    msg: str  # what was found and what was expected
    type: str = ""  # pydantic's error type (`int_parsing`, `missing`, ...; absent for a card id of /risk)
    input: Any = None  # the value refused (absent in BentoML's answers)
    url: str = ""  # pydantic's page on the error type (BentoML's answers only)


class ErrorBody(BaseModel):
    """Every error answer of the service's own routes (4xx, 503, 504)."""

    error: str
    detail: list[ErrorDetail] = Field(default_factory=list)  # present when a request's fields were refused


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
    """A `Transaction` model that parses strictly and also applies `limits` (errors located at the field); its JSON
    schema (named `Transaction`) states the limits."""

    class CheckedTransaction(Transaction):
        __qualname__ = "Transaction"  # its name in JSON schemas (the base model never appears beside it)
        model_config = ConfigDict(
            title="Transaction", strict=True, json_schema_extra=lambda schema, _: limits_schema(schema, limits)
        )

        @field_validator("transaction_id", "customer_id", "terminal_id", mode="before")
        @classmethod
        def _whole(cls, value: object) -> object:
            return int(value) if type(value) is float and value.is_integer() else value  # JSON's 5.0 is 5

        @field_validator("tx_amount")
        @classmethod
        def _amount(cls, value: float) -> float:
            return check_amount(value, limits)

        @field_validator("tx_datetime")
        @classmethod
        def _moment(cls, value: datetime) -> datetime:
            return check_moment(value, limits)

    return CheckedTransaction


# RFC 3339's time of day and offset, as the service parses them (no leap second; offsets up to 23:59)
TIME_OF_DAY = r"([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)"
DAY = r"(0[1-9]|[12]\d|3[01])"  # the format (`date-time`) refuses the days a month lacks


def limits_schema(schema: dict[str, Any], limits: Limits) -> None:
    """The ingestion limits in a transaction's JSON schema. A JSON schema cannot bound a date-time, so a `pattern`
    bounds its date as written: a time with an offset, within a day of `valid_from` or `valid_to`, is checked as
    the instant it names (UTC), which the pattern cannot see."""
    amount, moment = schema["properties"]["tx_amount"], schema["properties"]["tx_datetime"]
    amount.update(minimum=0, maximum=limits.max_amount)
    first, last = limits.valid_from.astimezone(UTC), (limits.valid_to - timedelta(microseconds=1)).astimezone(UTC)
    moment.update(
        pattern=f"^({date_pattern(first.date(), last.date())})[Tt]{TIME_OF_DAY}$",
        description=f"an instant from {first.isoformat()} to before {limits.valid_to.astimezone(UTC).isoformat()}",
    )


def date_pattern(first: date, last: date) -> str:
    """A regular expression of the dates (YYYY-MM-DD) from `first` to `last` inclusive, as alternatives: whole
    years, whole months, then days, at either end."""
    if first > last:
        raise ValueError(f"no date from {first} to {last}; expected valid_from before valid_to (params ingest)")
    alternatives = []
    if first.year == last.year:
        alternatives += _months_of(first.year, first, last)
    else:
        alternatives += _months_of(first.year, first, date(first.year, 12, 31))
        whole = range(first.year + 1, last.year)
        if whole:
            alternatives.append(f"({'|'.join(f'{year:04d}' for year in whole)})-(0[1-9]|1[0-2])-{DAY}")
        alternatives += _months_of(last.year, date(last.year, 1, 1), last)
    return "|".join(alternatives)


def _months_of(year: int, first: date, last: date) -> list[str]:
    """`first` to `last` within one year: whole months as one alternative, partial ones day by day."""
    months = range(first.month, last.month + 1)
    ends_month = (last + timedelta(days=1)).month != last.month
    whole = [m for m in months if (m != first.month or first.day == 1) and (m != last.month or ends_month)]
    alternatives = [f"{year:04d}-({'|'.join(f'{m:02d}' for m in whole)})-{DAY}"] if whole else []
    for month in (m for m in months if m not in whole):
        low = first.day if month == first.month else 1
        high = last.day if month == last.month else 31
        alternatives.append(f"{year:04d}-{month:02d}-({'|'.join(f'{d:02d}' for d in range(low, high + 1))})")
    return alternatives
