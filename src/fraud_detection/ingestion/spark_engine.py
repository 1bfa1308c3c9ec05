"""The ingestion rules on Spark: the same rules as the polars engine, giving identical results.

The polars frame goes to Spark as a parquet file, the rules run as Spark column expressions, and the executors write
the typed rows as parquet files that come back to be split and sorted exactly as the polars engine does.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import polars as pl
from pyspark.sql import Column, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fraud_detection.ingestion import rules
from fraud_detection.ingestion.ops import Kind
from fraud_detection.ingestion.polars_engine import PolarsOps, split, with_optional_fields
from fraud_detection.ingestion.schema import FIELDS, REASON, ROW_NUMBER, Limits
from fraud_detection.runtime.spark import SparkExchange

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

MICROS_PER_DAY = 86_400_000_000
DUPLICATE = "transaction_id:duplicate"
HELPER_PREFIX = "__rule_helper_"
MISSING, UNPARSEABLE = "__missing", "__unparseable"
KINDS: tuple[tuple[tuple[type[T.DataType], ...], Kind], ...] = (
    ((T.ByteType, T.ShortType, T.IntegerType, T.LongType), "int"),
    ((T.FloatType, T.DoubleType, T.DecimalType), "float"),
    ((T.StringType,), "string"),
    ((T.BooleanType,), "bool"),
    ((T.TimestampType, T.TimestampNTZType), "datetime"),
    ((T.DateType,), "date"),
)


class SparkOps:
    """`Ops` on Spark columns of `frame`, with the semantics of `PolarsOps` (Rust regex, lenient casts).

    Regex results become helper columns, each computed once: the rules use them many times, and inlined they
    make expressions too big for Spark's code generation. Add them with `with_helpers` before using the rules.
    """

    def __init__(self, frame: DataFrame) -> None:
        self._frame = frame
        self._types = {f.name: f.dataType for f in frame.schema.fields}
        self._helpers: dict[str, tuple[str, Column]] = {}  # key -> (column name, expression)

    def with_helpers(self, frame: DataFrame) -> DataFrame:
        """`frame` with the helper columns the expressions made so far refer to."""
        return frame.withColumns(dict(self._helpers.values()))

    def _helper(self, key: str, expression: Column) -> Column:
        if key not in self._helpers:
            self._helpers[key] = (f"{HELPER_PREFIX}{len(self._helpers)}", expression)
        return F.col(self._helpers[key][0])

    def kind(self, name: str) -> Kind:
        return _kind(self._types[name])

    def dtype_name(self, name: str) -> str:
        return self._types[name].simpleString()

    def col(self, name: str) -> Column:
        return F.col(name)

    def lit(self, value: object) -> Column:
        return F.lit(value)

    def null(self) -> Column:
        return F.lit(None)

    def when(self, condition: Column, then: Column, otherwise: Column | None = None) -> Column:
        return F.when(condition, then).otherwise(otherwise if otherwise is not None else F.lit(None))

    def coalesce(self, *exprs: Column) -> Column:
        return F.coalesce(*exprs)

    def is_null(self, expr: Column) -> Column:
        return expr.isNull()

    def is_in(self, expr: Column, values: list[int]) -> Column:
        return expr.isin(values)  # SQL IN: null for a null input, like PolarsOps

    def strip(self, expr: Column) -> Column:
        # polars strips Unicode White_Space; Spark's trim only strips the space character.
        return F.regexp_replace(expr, r"^\p{IsWhite_Space}+|\p{IsWhite_Space}+$", "")

    def matches(self, expr: Column, pattern: str) -> Column:
        return self._helper(f"{expr} matches {pattern}", expr.rlike(_java_regex(pattern)))

    def extract(self, expr: Column, pattern: str, group: int) -> Column:
        # regexp_extract gives "" for no match and for an unmatched group; polars gives null.
        extracted = F.nullif(F.regexp_extract(expr, _java_regex(pattern), group), F.lit(""))
        return self._helper(f"{expr} extract {group} {pattern}", extracted)

    def pad_right(self, expr: Column, width: int, char: str) -> Column:
        # rpad also truncates longer strings; polars pad_end leaves them as they are.
        return F.when(F.length(expr) >= width, expr).otherwise(F.rpad(expr, width, char))

    def to_int64(self, expr: Column) -> Column:
        return expr.try_cast("bigint")  # null on failure, even in ANSI mode

    def to_float64(self, expr: Column) -> Column:
        return expr.try_cast("double")

    def floordiv(self, left: Column, right: int) -> Column:
        quotient = F.call_function("div", left, F.lit(right))  # integral, truncates towards zero
        inexact_negative = (left % right != 0) & ((left < 0) != (right < 0))
        return F.when(inexact_negative, quotient - 1).otherwise(quotient)

    def is_finite(self, expr: Column) -> Column:
        number = expr.cast("double")  # NaN compares above +inf in Spark, so both tests fail for it
        return (number < float("inf")) & (number > float("-inf"))

    def is_integral(self, expr: Column) -> Column:
        return expr % 1 == 0  # floor() == x would overflow to long under ANSI; inf and NaN give false

    def epoch_micros(self, expr: Column) -> Column:
        dtype = self._frame.select(expr).schema.fields[0].dataType
        if isinstance(dtype, T.DateType):
            return F.unix_date(expr).cast("bigint") * MICROS_PER_DAY
        if isinstance(dtype, T.TimestampNTZType):  # naive means UTC, whatever the session time zone
            epoch = F.lit("1970-01-01 00:00:00").cast("timestamp_ntz")
            return F.timestamp_diff("MICROSECOND", epoch, expr)
        return F.unix_micros(expr)


def _kind(dtype: T.DataType) -> Kind:
    return next((kind for types, kind in KINDS if isinstance(dtype, types)), "other")


def _java_regex(pattern: str) -> str:
    """The Java regex that matches what `pattern` matches in Rust's regex (polars).

    (?U) makes \\d and \\s Unicode-aware as in Rust; a final `$` becomes \\z, since Java's `$` also matches
    before a final line terminator.
    """
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\z"
    return "(?U)" + pattern


def validate(
    spark: SparkSession, raw: pl.DataFrame, limits: Limits, exchange_dir: str | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split `raw` (mapped columns + row_number) into accepted transactions and (row_number, reason) rejects.

    Gives the same frames, row for row and type for type, as `polars_engine.validate`. The rows pass to Spark and
    back as parquet files under `exchange_dir` (`SparkExchange`): no collect through the driver, whose results are
    capped by `spark.driver.maxResultSize` (1 GB: the default data at 10x passes it).
    """
    frame = with_optional_fields(raw)
    # Checked on the polars types first: the same errors as the polars engine, and no type Spark cannot take.
    rules.check_column_types(PolarsOps(frame.schema), list(frame.columns))
    exchange = SparkExchange(spark, exchange_dir)
    typed = _typed(exchange.given(_portable(frame)), limits).withColumn(REASON, _duplicate_reason())
    accepted, rejected = split(exchange.taken(typed, (ROW_NUMBER,), 1).collect())
    log.debug("spark engine: %d rows accepted, %d rejected", accepted.height, rejected.height)
    return accepted, rejected


def _typed(source: DataFrame, limits: Limits) -> DataFrame:
    """row_number, every field in its output type (timestamps as epoch microseconds), and the first reason.

    In stages, so that no expression holds a copy of another: the reason refers to the coerced columns.
    """
    ops = SparkOps(source)
    rules.check_column_types(ops, source.columns)
    coerced = {f.name: rules.coerce(ops, f) for f in FIELDS}
    staged = ops.with_helpers(source).select(F.col(ROW_NUMBER), *_coerced_columns(coerced))
    coerced = {name: _staged(name) for name in coerced}
    return staged.select(
        F.col(ROW_NUMBER),
        *(F.col(name) for name in coerced),
        rules.reason_column(ops, coerced, limits).alias(REASON),
    )


def _portable(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame in types Spark reads, holding the values the rules would take from the original.

    Integers become Int64 (null where out of range, like the rules' lenient cast), floats Float64, datetimes
    microseconds in UTC (a naive datetime means UTC; finer units floor, like polars' `dt.epoch("us")`).
    """
    converted = []
    for name, dtype in frame.schema.items():
        column = pl.col(name)
        if dtype.is_integer() and dtype != pl.Int64:
            converted.append(column.cast(pl.Int64, strict=False))
        elif dtype.is_float() and dtype != pl.Float64:
            converted.append(column.cast(pl.Float64))
        elif isinstance(dtype, pl.Datetime):
            in_micros = column.dt.cast_time_unit("us")
            utc = in_micros.dt.replace_time_zone("UTC") if dtype.time_zone is None else in_micros
            converted.append(utc.dt.convert_time_zone("UTC"))
    return frame.with_columns(converted)


def _coerced_columns(coerced: dict[str, rules.Coerced]) -> list[Column]:
    return [
        column.alias(f"{name}{suffix}")
        for name, c in coerced.items()
        for suffix, column in (("", c.value), (MISSING, c.missing), (UNPARSEABLE, c.unparseable))
    ]


def _staged(name: str) -> rules.Coerced:
    return rules.Coerced(F.col(name), F.col(f"{name}{MISSING}"), F.col(f"{name}{UNPARSEABLE}"))


def _duplicate_reason() -> Column:
    """A good row whose transaction_id an earlier good row already has is a duplicate (the first is kept)."""
    good = F.col(REASON).isNull()
    twins = Window.partitionBy(F.col("transaction_id"), good).orderBy(F.col(ROW_NUMBER))
    return F.when(good & (F.row_number().over(twins) > 1), F.lit(DUPLICATE)).otherwise(F.col(REASON))
