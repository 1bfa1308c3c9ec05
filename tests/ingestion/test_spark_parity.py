"""The Spark engine gives exactly the polars engine's accepted and rejected frames, whatever the source."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pyspark.sql import SparkSession

from fraud_detection.ingestion import polars_engine, spark_engine
from fraud_detection.ingestion.schema import Limits
from fraud_detection.ingestion.sources import map_columns
from fraud_detection.runtime.params import Params
from fraud_detection.simulation.params import SimulateParams
from fraud_detection.simulation.simulator import SimulationConfig, simulate_transactions
from tests.conftest import changed
from tests.ingestion.messy_source import COLUMN_MAP, messy_source

pytestmark = pytest.mark.spark

NAN, INF = float("nan"), float("inf")
NANOS = pl.Datetime("ns")
Frames = tuple[pl.DataFrame, pl.DataFrame]
TimeColumn = Callable[[pl.Series], pl.Series]


@pytest.fixture(scope="module")
def limits(params: Params) -> Limits:
    return Limits.from_params(params.ingest)


def both_engines(spark: SparkSession, mapped: pl.DataFrame, limits: Limits) -> Frames:
    """Validate on both engines, check that they agree exactly, and return the (accepted, rejected) frames."""
    accepted, rejected = polars_engine.validate(mapped, limits)
    spark_accepted, spark_rejected = spark_engine.validate(spark, mapped, limits)
    assert_frame_equal(spark_accepted, accepted)
    assert_frame_equal(spark_rejected, rejected)
    return accepted, rejected


def test_messy_source_gives_the_same_frames_and_reasons(spark: SparkSession, limits: Limits) -> None:
    raw, expected = messy_source()
    mapped, _ = map_columns(raw, COLUMN_MAP)
    accepted, rejected = both_engines(spark, mapped, limits)
    reasons = dict(zip(rejected["row_number"], rejected["reason"], strict=True))
    assert [reasons.get(i) for i in range(raw.height)] == expected
    assert accepted.height == expected.count(None)


def test_text_oddities_give_the_same_frames(spark: SparkSession, limits: Limits) -> None:
    """Unicode whitespace and digits, line breaks, number and time spellings: where Java and Rust differ."""
    cells = [
        ("1", "2018-04-02T10:00:00.1234567z", "\u00a07\u2003", "12.5"),
        ("2", "2018-04-02 10:00:00 Z", "\t7\r\n", "5."),
        ("3", "2018-04-02T10:00+0530", "7", ".5"),
        ("4", "2018-04-02\n", "7\n", "1e3"),
        ("5", "2018-04-02", "+7", "+1.5"),
        ("\u0666", "2018-04-02", "7", "1"),
        ("7", "\u0662\u0660\u0661\u0668-04-02", "7", "1"),
        ("8", "2018-04-02", "7", "1\n2"),
        ("9", "2018-04-02T10:00:00.", "7", "\u200b1"),
        ("10", "2018-04-02", "7", "-0.0"),
        ("10", "2018-04-02", "007", "0"),
        ("12", "2018-13-02", "7", "1"),
    ]
    mapped = pl.DataFrame(
        {
            "row_number": range(len(cells)),
            "transaction_id": [c[0] for c in cells],
            "tx_datetime": [c[1] for c in cells],
            "customer_id": [c[2] for c in cells],
            "terminal_id": ["9"] * len(cells),
            "tx_amount": [c[3] for c in cells],
            "tx_fraud": [" 0 "] * len(cells),
        },
        schema_overrides={"row_number": pl.Int64},
    )
    both_engines(spark, mapped, limits)


TYPED_GOOD = {
    "transaction_id": 1,
    "customer_id": 1.0,
    "terminal_id": 9,
    "tx_amount": 12.5,
    "tx_fraud": 0,
    "tx_fraud_scenario": 0,
}
# Column overrides of a good typed row (ids 1, 2, ... unless overridden); a timestamp of None is missing.
TYPED_ROWS: list[dict[str, object]] = [
    {},
    {"tx_amount": NAN},
    {"tx_amount": INF},
    {"tx_amount": -INF},
    {"tx_amount": -1.0},
    {"tx_amount": 2e6},
    {"tx_amount": None},
    {"customer_id": 1.5},
    {"customer_id": NAN},
    {"customer_id": INF},
    {"customer_id": 2.0**53},
    {"customer_id": 2.0**53 - 1},
    {"customer_id": -0.0},
    {"customer_id": -3.0},
    {"terminal_id": None},
    {"tx_fraud": 2},
    {"tx_fraud": -1},
    {"tx_fraud": None},
    {"tx_fraud_scenario": -1},
    {"tx_fraud_scenario": 2},
    {"tx_fraud": 1, "tx_fraud_scenario": 0},
    {"tx_fraud": 1, "tx_fraud_scenario": 3},
    {"tx_fraud_scenario": None},
    {"transaction_id": 1},
    {"transaction_id": None},
    {"transaction_id": -5},
    {"tx_datetime": None},
    {"tx_datetime": datetime(1969, 12, 31, 23, 59, 59, 999_999)},  # accepted, since valid_from is 1900
    {"tx_datetime": datetime(1899, 12, 31, 23, 59, 59, 999_999)},
    {"tx_datetime": datetime(2101, 1, 1)},
]
TYPED_LIMITS = Limits(datetime(1900, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC), max_amount=1e6)
# The timestamp column in each datetime type, from naive datetimes that stand for UTC.
TIME_COLUMNS: dict[str, TimeColumn] = {
    "utc": lambda naive: naive.dt.replace_time_zone("UTC"),
    "kolkata": lambda naive: naive.dt.replace_time_zone("UTC").dt.convert_time_zone("Asia/Kolkata"),
    "naive": lambda naive: naive,
    "naive_ns_less_1ns": lambda naive: (naive.cast(pl.Datetime("ns")).cast(pl.Int64) - 1).cast(NANOS),
    "milliseconds": lambda naive: naive.dt.cast_time_unit("ms"),
    "date": lambda naive: naive.dt.date(),
}


def typed_source(time_column: TimeColumn) -> pl.DataFrame:
    """A source with native column types (Int64 ids, Float64 customer ids and amounts, UInt16 terminals, Int8
    labels), one row per typed defect."""
    rows = []
    for i, overrides in enumerate(TYPED_ROWS):
        moment = datetime(2018, 4, 2, 10, 0, 0, 1) + timedelta(hours=7 * i)
        rows.append({**TYPED_GOOD, "transaction_id": 1 + i, "tx_datetime": moment, **overrides})
    schema = {
        "transaction_id": pl.Int64,
        "tx_datetime": pl.Datetime("us"),
        "customer_id": pl.Float64,
        "terminal_id": pl.UInt16,
        "tx_amount": pl.Float64,
        "tx_fraud": pl.Int8,
        "tx_fraud_scenario": pl.Int8,
    }
    frame = pl.DataFrame(rows, schema=schema).with_row_index("row_number")
    return frame.with_columns(
        pl.col("row_number").cast(pl.Int64), time_column(frame["tx_datetime"]).alias("tx_datetime")
    )


@pytest.mark.parametrize("time_column", TIME_COLUMNS.values(), ids=TIME_COLUMNS.keys())
def test_typed_source_gives_the_same_frames(spark: SparkSession, time_column: TimeColumn) -> None:
    accepted, rejected = both_engines(spark, typed_source(time_column), TYPED_LIMITS)
    assert accepted.height >= 5 and rejected.height >= 20


@pytest.mark.parametrize("name", ["naive", "naive_ns_less_1ns", "date", "kolkata"])
def test_results_do_not_depend_on_the_session_time_zone(spark: SparkSession, name: str) -> None:
    """Naive datetimes and dates mean UTC on both engines, whatever Spark's session time zone."""
    spark.conf.set("spark.sql.session.timeZone", "America/Los_Angeles")
    try:
        both_engines(spark, typed_source(TIME_COLUMNS[name]), TYPED_LIMITS)
    finally:
        spark.conf.set("spark.sql.session.timeZone", "UTC")


def test_typed_labels_and_absent_optional_field_give_the_same_frames(spark: SparkSession) -> None:
    source = typed_source(TIME_COLUMNS["utc"]).drop("tx_fraud_scenario")
    source = source.with_columns(pl.col("tx_fraud").cast(pl.Boolean), pl.col("tx_amount").cast(pl.Float32))
    both_engines(spark, source, TYPED_LIMITS)


def test_simulated_transactions_are_all_accepted_on_both(
    spark: SparkSession, limits: Limits, small_simulate_params: SimulateParams
) -> None:
    raw = simulate_transactions(SimulationConfig.from_params(changed(small_simulate_params, seed=1)))
    mapped, _ = map_columns(raw, {})
    accepted, rejected = both_engines(spark, mapped, limits)
    assert rejected.height == 0 and accepted.height == raw.height
