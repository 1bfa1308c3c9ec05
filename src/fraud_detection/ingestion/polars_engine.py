"""The ingestion rules on polars (the default engine)."""

from __future__ import annotations

import polars as pl

from fraud_detection.ingestion import rules
from fraud_detection.ingestion.ops import Expr, Kind
from fraud_detection.ingestion.schema import FIELDS, OUTPUT_SCHEMA, REASON, ROW_NUMBER, Limits


class PolarsOps:
    def __init__(self, schema: pl.Schema) -> None:
        self._schema = schema

    def kind(self, name: str) -> Kind:
        dtype = self._schema[name]
        if dtype.is_integer():
            return "int"
        if dtype.is_float():
            return "float"
        if dtype == pl.String:
            return "string"
        if dtype == pl.Boolean:
            return "bool"
        if isinstance(dtype, pl.Datetime):
            return "datetime"
        return "date" if dtype == pl.Date else "other"

    def dtype_name(self, name: str) -> str:
        return str(self._schema[name])

    def col(self, name: str) -> pl.Expr:
        return pl.col(name)

    def lit(self, value: object) -> pl.Expr:
        return pl.lit(value)

    def null(self) -> pl.Expr:
        return pl.lit(None)

    def when(self, condition: Expr, then: Expr, otherwise: Expr | None = None) -> pl.Expr:
        return pl.when(condition).then(then).otherwise(otherwise if otherwise is not None else pl.lit(None))

    def coalesce(self, *exprs: Expr) -> pl.Expr:
        return pl.coalesce(*exprs)

    def is_null(self, expr: pl.Expr) -> pl.Expr:
        return expr.is_null()

    def is_in(self, expr: pl.Expr, values: list[int]) -> pl.Expr:
        return pl.when(expr.is_null()).then(None).otherwise(expr.is_in(values))

    def strip(self, expr: pl.Expr) -> pl.Expr:
        return expr.str.strip_chars()

    def matches(self, expr: pl.Expr, pattern: str) -> pl.Expr:
        return expr.str.contains(f"^(?:{pattern})$")

    def extract(self, expr: pl.Expr, pattern: str, group: int) -> pl.Expr:
        return expr.str.extract(pattern, group)

    def pad_right(self, expr: pl.Expr, width: int, char: str) -> pl.Expr:
        return expr.str.pad_end(width, char)

    def to_int64(self, expr: pl.Expr) -> pl.Expr:
        return expr.cast(pl.Int64, strict=False)

    def to_float64(self, expr: pl.Expr) -> pl.Expr:
        return expr.cast(pl.Float64, strict=False)

    def floordiv(self, left: pl.Expr, right: int) -> pl.Expr:
        return left // right

    def is_finite(self, expr: pl.Expr) -> pl.Expr:
        return expr.cast(pl.Float64).is_finite()

    def is_integral(self, expr: pl.Expr) -> pl.Expr:
        return expr.floor() == expr

    def epoch_micros(self, expr: pl.Expr) -> pl.Expr:
        return expr.dt.epoch("us")


def validate(raw: pl.DataFrame, limits: Limits) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split `raw` (mapped columns + row_number) into accepted transactions and (row_number, reason) rejects."""
    frame = with_optional_fields(raw)
    ops = PolarsOps(frame.schema)
    rules.check_column_types(ops, list(frame.columns))
    coerced = {f.name: rules.coerce(ops, f) for f in FIELDS}
    typed = frame.select(
        pl.col(ROW_NUMBER),
        *(c.value.alias(name) for name, c in coerced.items()),
        rules.reason_column(ops, coerced, limits).alias(REASON),
    )
    return split(typed.with_columns(_duplicate_reason()))


def split(typed: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Accepted rows in the output schema, by time then id; rejected (row_number, reason) by row number.
    Shared by both engines, so their outputs have the same types and order."""
    accepted = (
        typed.filter(pl.col(REASON).is_null())
        .select(pl.col(name).cast(dtype) for name, dtype in OUTPUT_SCHEMA.items())
        .sort("tx_datetime", "transaction_id")
    )
    rejected = (
        typed.filter(pl.col(REASON).is_not_null())
        .select(pl.col(ROW_NUMBER).cast(pl.Int64), pl.col(REASON).cast(pl.String))
        .sort(ROW_NUMBER)
    )
    return accepted, rejected


def with_optional_fields(raw: pl.DataFrame) -> pl.DataFrame:
    """`raw` with a null column for every optional field the source lacks."""
    absent = [f for f in FIELDS if not f.required and f.name not in raw.columns]
    return raw.with_columns(pl.lit(None, dtype=f.dtype).alias(f.name) for f in absent)


def _duplicate_reason() -> pl.Expr:
    """A good row whose transaction_id an earlier good row already has is a duplicate (the first is kept). Rows are
    in row_number order (map_columns numbers them so); one hash set of ids, not a group per id."""
    good = pl.col(REASON).is_null()
    earlier_twin = ~pl.when(good).then(pl.col("transaction_id")).is_first_distinct()
    return pl.when(good & earlier_twin).then(pl.lit("transaction_id:duplicate")).otherwise(pl.col(REASON)).alias(REASON)
