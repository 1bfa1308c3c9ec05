"""The declared schema of transactions: required and optional fields, their output types and accepted ranges."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

import pandera.polars as pa
import polars as pl

if TYPE_CHECKING:
    from fraud_detection.ingestion.params import IngestParams

FieldKind = Literal["id", "timestamp", "amount", "label", "scenario"]


@dataclass(frozen=True)
class Field:
    name: str
    kind: FieldKind
    dtype: pl.DataType
    required: bool = True


FIELDS: tuple[Field, ...] = (
    Field("transaction_id", "id", pl.Int64()),
    Field("tx_datetime", "timestamp", pl.Datetime("us", "UTC")),
    Field("customer_id", "id", pl.Int64()),
    Field("terminal_id", "id", pl.Int64()),
    Field("tx_amount", "amount", pl.Float64()),
    Field("tx_fraud", "label", pl.Int8()),
    Field("tx_fraud_scenario", "scenario", pl.Int8(), required=False),
)
FIELD_NAMES = tuple(f.name for f in FIELDS)
REQUIRED_FIELDS = tuple(f.name for f in FIELDS if f.required)
OUTPUT_SCHEMA = pl.Schema({f.name: f.dtype for f in FIELDS})
ROW_NUMBER = "row_number"  # 0-based position of a row in the source, kept on quarantined rows
REASON = "reason"


@dataclass(frozen=True)
class Limits:
    """Accepted ranges for row validation (params.yaml `ingest`)."""

    valid_from: datetime
    valid_to: datetime
    max_amount: float

    @classmethod
    def from_params(cls, params: IngestParams) -> Limits:
        return cls(valid_from=_utc(params.valid_from), valid_to=_utc(params.valid_to), max_amount=params.max_amount)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def transactions_contract(limits: Limits) -> pa.DataFrameSchema:
    """The contract every accepted transactions table meets, whatever engine produced it."""
    return pa.DataFrameSchema(
        {
            "transaction_id": pa.Column(pl.Int64, pa.Check.ge(0), unique=True),
            "tx_datetime": pa.Column(
                pl.Datetime("us", "UTC"),
                [pa.Check.ge(limits.valid_from), pa.Check.lt(limits.valid_to)],
            ),
            "customer_id": pa.Column(pl.Int64, pa.Check.ge(0)),
            "terminal_id": pa.Column(pl.Int64, pa.Check.ge(0)),
            "tx_amount": pa.Column(pl.Float64, [pa.Check.ge(0), pa.Check.le(limits.max_amount)]),
            "tx_fraud": pa.Column(pl.Int8, pa.Check.isin([0, 1])),
            "tx_fraud_scenario": pa.Column(pl.Int8, pa.Check.ge(0), nullable=True),
        },
        strict=True,
        ordered=True,
    )
