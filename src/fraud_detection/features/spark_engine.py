"""The batch engine on Spark: the same state tables and transaction features as the polars engine, row for row.

The state tables are Spark aggregations and range windows over a dense (entity, day) grid; the features join them
to the transactions in Spark and apply the one definition (definitions.transaction_features) inside `mapInPandas`,
so no formula is written twice. The label events (a polars or Spark frame: transaction_id, tx_fraud, known_at)
bring the labels known early, as in polars_engine. Tables pass between the driver and Spark as parquet files
(`runtime.spark.SparkExchange`): the executors read what the driver gives and write the results, sorted, as part
files that come back a part at a time (`FrameParts`), typed and ordered exactly as polars_engine's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import polars as pl
from pyspark.sql import Column, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from fraud_detection.features import definitions
from fraud_detection.features.definitions import (
    CUSTOMER_WINDOWS,
    LIST_STATE,
    MICROS_PER_DAY,
    NUMBER_STATE,
    RUN_WINDOW_DAYS,
    STATE_COLUMNS,
    TERMINAL_EARLY_LABELS,
    TERMINAL_EDGE_LAGS,
    TERMINAL_WINDOWS,
)
from fraud_detection.features.polars_engine import EVENT_TIMESTAMP, LABEL_COLUMNS, StateTables
from fraud_detection.runtime.frame_parts import FrameParts
from fraud_detection.runtime.spark import SparkExchange

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

ROW = "__row"
TX_COLUMNS = ("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount", "tx_fraud")
PASSED_THROUGH = (ROW, "transaction_id", "tx_us", "customer_id", "terminal_id", "tx_fraud")


class SparkStateTables(NamedTuple):
    """The three state tables as Spark frames (uncollected), with the columns of polars_engine's tables."""

    customer_daily: DataFrame
    customer_intraday: DataFrame
    terminal_daily: DataFrame


def state_tables(
    spark: SparkSession,
    transactions: pl.DataFrame | DataFrame,
    label_delay_days: int,
    label_events: pl.DataFrame | DataFrame | None = None,
) -> StateTables:
    """The polars engine's `state_tables`, computed by Spark: same columns, types, values and row order (whole
    frames: `state_table_parts` gives them a part at a time)."""
    return StateTables(*(parts.collect() for parts in state_table_parts(spark, transactions, label_delay_days,
                                                                        label_events)))  # fmt: skip


def state_table_parts(
    spark: SparkSession,
    transactions: pl.DataFrame | DataFrame,
    label_delay_days: int,
    label_events: pl.DataFrame | DataFrame | None = None,
    exchange_dir: str | None = None,
    parts: int = 1,
) -> StateTables:
    """`state_tables` as `FrameParts`: the executors write each table sorted, in at least `parts` part files
    under `exchange_dir` (None: the system's temporary folder), and the parts are read back one at a time."""
    exchange = SparkExchange(spark, exchange_dir)
    with _cached(_transactions(exchange, transactions)) as tx:
        tables = spark_state_tables(tx, label_delay_days, _label_events(exchange, label_events))
        return StateTables(
            customer_daily=exchange.taken(tables.customer_daily, ("customer_id", "day"), parts),
            customer_intraday=exchange.taken(tables.customer_intraday, ("customer_id", EVENT_TIMESTAMP), parts),
            terminal_daily=exchange.taken(tables.terminal_daily, ("terminal_id", "day"), parts),
        )


def transaction_features(
    spark: SparkSession,
    transactions: pl.DataFrame | DataFrame,
    tables: StateTables | None = None,
    label_delay_days: int | None = None,
    label_events: pl.DataFrame | DataFrame | None = None,
) -> pl.DataFrame:
    """The polars engine's `transaction_features`, joined in Spark, in the order of `transactions` (for a Spark
    frame, its partition order; tx_datetime must be a TIMESTAMP).

    `tables` are polars state tables (from either engine, frames or lazy frames); without them Spark computes them
    from `transactions`, which then needs `label_delay_days` (and `label_events`, if any labels were known early).
    """
    return transaction_feature_parts(spark, transactions, tables, label_delay_days, label_events).collect()


def transaction_feature_parts(
    spark: SparkSession,
    transactions: pl.DataFrame | DataFrame,
    tables: StateTables | None = None,
    label_delay_days: int | None = None,
    label_events: pl.DataFrame | DataFrame | None = None,
    exchange_dir: str | None = None,
    parts: int = 1,
) -> FrameParts:
    """`transaction_features` as `FrameParts`, read back a part file at a time (see `state_table_parts`)."""
    if tables is None and label_delay_days is None:
        raise ValueError("transaction_features needs the state tables, or label_delay_days to compute them")
    exchange = SparkExchange(spark, exchange_dir)
    with _cached(_transactions(exchange, transactions)) as tx:
        if tables is not None:
            state = SparkStateTables(*(exchange.given(table) for table in tables))
        else:
            state = spark_state_tables(tx, label_delay_days, _label_events(exchange, label_events))
        joined = _joined(_with_day(tx), state)
        features = joined.mapInPandas(_features_of_batches, _features_schema(joined))
        features = features.withColumn("tx_datetime", F.timestamp_micros("tx_us"))
        columns = [*LABEL_COLUMNS, *_feature_types()]
        return exchange.taken(features, (ROW,), parts, lambda part: part.select(columns))


def spark_state_tables(tx: DataFrame, label_delay_days: int, label_events: DataFrame | None = None) -> SparkStateTables:
    """The three state tables of `tx` (columns of TX_COLUMNS) as Spark frames; `label_events` (transaction_id,
    tx_fraud, known_us; None: none) bring the labels known early."""
    tx = _with_day(tx)
    days = _days(tx)
    early = _early_labels(tx, label_events, label_delay_days)
    return SparkStateTables(
        customer_daily=_customer_daily(tx, days),
        customer_intraday=_customer_intraday(tx),
        terminal_daily=_terminal_daily(tx, days, label_delay_days, early),
    )


def _label_events(exchange: SparkExchange, label_events: pl.DataFrame | DataFrame | None) -> DataFrame | None:
    """The label events as a Spark frame (transaction_id, tx_fraud, known_us); None when there are none."""
    if label_events is None:
        return None
    if isinstance(label_events, pl.DataFrame):
        if label_events.is_empty():
            return None
        known_us = pl.col("known_at").dt.epoch("us").alias("known_us")
        return exchange.given(label_events.select("transaction_id", "tx_fraud", known_us))
    return label_events.select("transaction_id", "tx_fraud", F.unix_micros("known_at").alias("known_us"))


def _early_labels(tx: DataFrame, label_events: DataFrame | None, label_delay_days: int) -> DataFrame | None:
    """polars_engine's `early_labels`: per labelled transaction its first event (terminal_id, from_us, until_us,
    fraud), only where from_us < until_us; None without label events."""
    if label_events is None:
        return None
    first = label_events.groupBy("transaction_id").agg(F.min(F.struct("known_us", "tx_fraud")).alias("first"))
    until_us = F.col("tx_us") + F.lit(label_delay_days * MICROS_PER_DAY)
    early = tx.select("transaction_id", "terminal_id", "tx_us").join(first, on="transaction_id", how="inner")
    return early.select(
        "terminal_id",
        F.greatest(F.col("first.known_us"), F.col("tx_us")).alias("from_us"),
        until_us.alias("until_us"),
        F.col("first.tx_fraud").cast("double").alias("fraud"),
    ).where(F.col("from_us") < F.col("until_us"))


def _transactions(exchange: SparkExchange, transactions: pl.DataFrame | DataFrame) -> DataFrame:
    """The transactions as a Spark frame with TX_COLUMNS and ROW, their position in the input."""
    if isinstance(transactions, pl.DataFrame):
        return exchange.given(transactions.select(TX_COLUMNS).with_row_index(ROW).cast({ROW: pl.Int64}))
    return transactions.select(*TX_COLUMNS).withColumn(ROW, F.monotonically_increasing_id())


@contextmanager
def _cached(frame: DataFrame) -> Iterator[DataFrame]:
    """The frame, kept by the executors while in use: the state tables and the join all read it."""
    cached = frame.persist()
    try:
        yield cached
    finally:
        cached.unpersist()


def _floor_div(column: Column, divisor: int) -> Column:
    """Exact integer floor division (Spark's `div` truncates towards zero)."""
    return F.call_function("div", column - F.pmod(column, F.lit(divisor)), F.lit(divisor))


def _with_day(tx: DataFrame) -> DataFrame:
    tx_us = F.unix_micros("tx_datetime")
    return tx.withColumns({"tx_us": tx_us, "day": _floor_div(tx_us, MICROS_PER_DAY)})


def _day_start(day: str) -> Column:
    return F.timestamp_micros(F.col(day) * MICROS_PER_DAY).alias(EVENT_TIMESTAMP)


def _days(tx: DataFrame) -> DataFrame:
    """One row per day from the first transaction's day to the day after the last's."""
    bounds = tx.agg(F.min("day").alias("first"), (F.max("day") + 1).alias("last"))
    return bounds.select(F.explode(F.sequence("first", "last")).alias("day"))


def _grid(tx: DataFrame, key: str, days: DataFrame) -> DataFrame:
    """One row per (entity, day): every entity of `tx` on every day of `days`."""
    return tx.select(key).distinct().crossJoin(days)


def _dense_daily(tx: DataFrame, key: str, days: DataFrame, aggregates: list[Column]) -> DataFrame:
    """One row per (entity, day) over `days`, with the day's aggregates (0 on days without transactions)."""
    daily = tx.groupBy(key, "day").agg(*aggregates)
    names = [c for c in daily.columns if c not in (key, "day")]
    return _grid(tx, key, days).join(daily, on=[key, "day"], how="left").fillna(0, subset=names)


def _window_sum(column: str, size: int, lag: int, key: str) -> Column:
    """Sum of `column` over the `size` days ending `lag` days before each row's day (0 when none)."""
    window = Window.partitionBy(key).orderBy("day").rangeBetween(-(lag + size - 1), -lag)
    return F.coalesce(F.sum(column).over(window), F.lit(0))


def _squared(column: str) -> Column:
    return F.col(column) * F.col(column)


def _customer_daily(tx: DataFrame, days: DataFrame) -> DataFrame:
    aggregates = [F.count(F.lit(1)).alias("nb"), F.sum("tx_amount").alias("amount"),
                  F.sum(_squared("tx_amount")).alias("amount_sq")]  # fmt: skip
    dense = _dense_daily(tx, "customer_id", days, aggregates)
    return dense.select(
        "customer_id",
        "day",
        _day_start("day"),
        *(_window_sum("nb", n, 1, "customer_id").alias(f"customer_nb_tx_prev_{n}d") for n in CUSTOMER_WINDOWS),
        *(_window_sum("amount", n, 1, "customer_id").alias(f"customer_amount_prev_{n}d") for n in CUSTOMER_WINDOWS),
        *(
            _window_sum("amount_sq", n, 1, "customer_id").alias(f"customer_amount_sq_prev_{n}d")
            for n in CUSTOMER_WINDOWS
        ),
    )


def _terminal_daily(tx: DataFrame, days: DataFrame, label_delay_days: int, early: DataFrame | None) -> DataFrame:
    aggregates = [F.count(F.lit(1)).alias("nb"), F.sum(F.col("tx_fraud").cast("bigint")).alias("frauds")]
    dense = _dense_daily(tx, "terminal_id", days, aggregates)
    events = _terminal_day_events(tx)
    for k in TERMINAL_EDGE_LAGS:  # the events of day - delay - k, [] where there are none
        lagged = events.select("terminal_id", (F.col("day") + label_delay_days + k).alias("day"),
                               F.col("events").alias(f"terminal_events_lag_{k}d"))  # fmt: skip
        dense = dense.join(lagged, on=["terminal_id", "day"], how="left")
    for lists in _early_label_events(early):
        dense = dense.join(lists, on=["terminal_id", "day"], how="left")
    lag = label_delay_days + 1
    return dense.select(
        "terminal_id",
        "day",
        _day_start("day"),
        *(_window_sum("nb", n, lag, "terminal_id").alias(f"terminal_nb_tx_lagged_{n}d") for n in TERMINAL_WINDOWS),
        *(
            _window_sum("frauds", n, lag, "terminal_id").alias(f"terminal_nb_fraud_lagged_{n}d")
            for n in TERMINAL_WINDOWS
        ),
        *(
            F.coalesce(F.col(f"terminal_events_lag_{k}d"), _empty_list()).alias(f"terminal_events_lag_{k}d")
            for k in TERMINAL_EDGE_LAGS
        ),
        *(
            (F.coalesce(F.col(name), _empty_list()) if early is not None else _empty_list()).alias(name)
            for name in TERMINAL_EARLY_LABELS
        ),
    ).join(_terminal_fraud_runs(tx, days, label_delay_days), on=["terminal_id", "day"], how="left")


def _terminal_fraud_runs(tx: DataFrame, days: DataFrame, label_delay_days: int) -> DataFrame:
    """Per terminal and day D: the fraud run of days D - delay - RUN_WINDOW_DAYS .. D - delay - 1 (definitions.py),
    as polars_engine's: the run of the window's latest day with a genuine transaction plus every fraud of the days
    after it (all of the window's frauds when no day has a genuine one); its first fraud, that day's run's first,
    or else the first fraud of the days after it."""
    dense = _daily_fraud_runs(tx, days)
    end = label_delay_days + 1  # the window's last day is D - end
    by_day = Window.partitionBy("terminal_id").orderBy("day")
    window = by_day.rangeBetween(-(end + RUN_WINDOW_DAYS - 1), -end)
    genuine_day = F.when(F.col("latest_genuine").isNotNull(), F.col("day"))
    lagged = dense.select(
        "terminal_id",
        "day",
        F.last(genuine_day, ignorenulls=True).over(window).alias("run_day"),  # null: no genuine transaction
        _frauds_through(by_day, end).alias("frauds_through_end"),
        F.coalesce(F.sum("nb_fraud").over(window), F.lit(0)).alias("window_frauds"),
        F.min("first_fraud").over(window).alias("window_first"),
        F.max("latest_fraud").over(window).alias("latest_fraud"),
    )
    at_run_day = dense.select(
        "terminal_id",
        F.col("day").alias("run_day"),
        F.col("run_nb").alias("run_nb_day"),
        F.col("run_first").alias("run_first_day"),
        _frauds_through(by_day, 0).alias("frauds_through_run_day"),
        # the first fraud of the days after (a backward fill)
        F.first("first_fraud", ignorenulls=True)
        .over(by_day.rowsBetween(1, Window.unboundedFollowing))
        .alias("first_after"),
    )
    joined = lagged.join(at_run_day, on=["terminal_id", "run_day"], how="left")
    restarted = F.col("run_day").isNotNull()
    after_run_day = F.col("frauds_through_end") - F.col("frauds_through_run_day")
    nb = F.when(restarted, F.col("run_nb_day") + after_run_day).otherwise(F.col("window_frauds"))
    first = (
        F.when(restarted & (F.col("run_nb_day") > 0), F.col("run_first_day"))
        .when(restarted, F.col("first_after"))
        .otherwise(F.col("window_first"))
    )
    lag_0_start = (F.col("day") - label_delay_days) * MICROS_PER_DAY  # times as microseconds before it
    return joined.select(
        "terminal_id",
        "day",
        nb.alias("terminal_fraud_run_nb_lagged"),
        F.when(nb > 0, lag_0_start - first).otherwise(0).alias("terminal_fraud_run_start_lagged_us"),
        F.coalesce(lag_0_start - F.col("latest_fraud"), F.lit(0)).alias("terminal_last_fraud_lagged_us"),
    )


def _daily_fraud_runs(tx: DataFrame, days: DataFrame) -> DataFrame:
    """Per terminal and day over `days`: its frauds (0 on days without), the times of its latest genuine
    transaction, first and latest fraud, and its own run (the frauds at or after its latest genuine transaction):
    their number (0 on days without) and the first one's time (null times: none)."""
    us, fraud = F.col("tx_us"), F.col("tx_fraud") == 1
    latest_genuine = F.max(F.when(~fraud, us))
    in_run = fraud & (us >= F.coalesce(latest_genuine.over(Window.partitionBy("terminal_id", "day")), F.lit(-1)))
    daily = (
        tx.withColumn("in_run", in_run)
        .groupBy("terminal_id", "day")
        .agg(
            F.sum(fraud.cast("bigint")).alias("nb_fraud"),
            latest_genuine.alias("latest_genuine"),
            F.max(F.when(fraud, us)).alias("latest_fraud"),
            F.min(F.when(fraud, us)).alias("first_fraud"),
            F.sum(F.col("in_run").cast("bigint")).alias("run_nb"),
            F.min(F.when(F.col("in_run"), us)).alias("run_first"),
        )
    )
    dense = _grid(tx, "terminal_id", days).join(daily, on=["terminal_id", "day"], how="left")
    return dense.fillna(0, subset=["nb_fraud", "run_nb"])


def _frauds_through(by_day: Window, lag: int) -> Column:
    """The terminal's frauds on the days up to `lag` days before each row's day (rows are dense days)."""
    return F.coalesce(F.sum("nb_fraud").over(by_day.rangeBetween(Window.unboundedPreceding, -lag)), F.lit(0))


def _empty_list() -> Column:
    return F.array().cast("array<double>")


def _terminal_day_events(tx: DataFrame) -> DataFrame:
    """Per terminal and day with transactions: [time of day in microseconds, fraud, ...], ordered by time then fraud
    (as polars_engine's)."""
    pairs = tx.select("terminal_id", "day", F.pmod("tx_us", F.lit(MICROS_PER_DAY)).cast("double").alias("tod"),
                      F.col("tx_fraud").cast("double").alias("fraud"))  # fmt: skip
    return _day_lists(pairs, "events")


def _early_label_events(early: DataFrame | None) -> list[DataFrame]:
    """Per terminal and day that early labels meet: their "from" and "until" lists (polars_engine's); none without
    early labels."""
    if early is None:
        return []
    day_start = F.col("day") * F.lit(MICROS_PER_DAY)
    last_day = _floor_div(F.col("until_us") - 1, MICROS_PER_DAY)
    from_tod = F.greatest(F.col("from_us") - day_start, F.lit(0)).cast("double").alias("tod")
    froms = early.withColumn("day", F.explode(F.sequence(_floor_div(F.col("from_us"), MICROS_PER_DAY), last_day)))
    froms = froms.select("terminal_id", "day", from_tod, "fraud")
    until_tod = (F.col("until_us") - day_start).cast("double").alias("tod")
    untils = early.withColumn("day", last_day).select("terminal_id", "day", until_tod, "fraud")
    from_name, until_name = TERMINAL_EARLY_LABELS
    return [_day_lists(froms, from_name), _day_lists(untils.where(F.col("tod") < MICROS_PER_DAY), until_name)]


def _day_lists(pairs: DataFrame, name: str) -> DataFrame:
    """(terminal_id, day, tod, fraud) rows as one [tod, fraud, ...] list `name` per terminal and day, ordered by time
    then fraud."""
    ordered = F.array_sort(F.collect_list(F.struct("tod", "fraud")))
    flat = F.flatten(F.transform(ordered, lambda p: F.array(p["tod"], p["fraud"])))
    return pairs.groupBy("terminal_id", "day").agg(flat.alias(name))


def _customer_intraday(tx: DataFrame) -> DataFrame:
    """Per customer and distinct transaction time s: the day's count, sum and sum of squares before s and at s."""
    at = tx.groupBy("customer_id", "day", "tx_datetime", "tx_us").agg(
        F.count(F.lit(1)).alias("nb_at"),
        F.sum("tx_amount").alias("amount_at"),
        F.sum(_squared("tx_amount")).alias("amount_sq_at"),
    )
    earlier = Window.partitionBy("customer_id", "day").orderBy("tx_us").rowsBetween(Window.unboundedPreceding, -1)

    def before(column: str) -> Column:
        return F.coalesce(F.sum(column).over(earlier), F.lit(0))

    return at.select(
        "customer_id",
        F.col("tx_datetime").alias(EVENT_TIMESTAMP),
        before("nb_at").alias("customer_today_nb_tx_before"),
        before("amount_at").alias("customer_today_amount_before"),
        before("amount_sq_at").alias("customer_today_amount_sq_before"),
        F.col("nb_at").alias("customer_today_nb_tx_at"),
        F.col("amount_at").alias("customer_today_amount_at"),
        F.col("amount_sq_at").alias("customer_today_amount_sq_at"),
        F.col("tx_us").alias("customer_today_last_tx_us"),
    )


def _joined(tx: DataFrame, state: SparkStateTables) -> DataFrame:
    """Each transaction with its state, as a point-in-time lookup would give it (null where there is none)."""
    intraday = state.customer_intraday.withColumn("tx_us", F.unix_micros(EVENT_TIMESTAMP)).drop(EVENT_TIMESTAMP)
    return (
        tx.join(state.customer_daily.drop(EVENT_TIMESTAMP), on=["customer_id", "day"], how="left")
        .join(state.terminal_daily.drop(EVENT_TIMESTAMP), on=["terminal_id", "day"], how="left")
        .join(intraday, on=["customer_id", "tx_us"], how="left")
        .select(*PASSED_THROUGH, "tx_amount", *STATE_COLUMNS)
    )


def _feature_types() -> dict[str, np.dtype]:
    """Each feature's numpy type, as the definition gives it."""
    empty = np.zeros(0)
    state = dict.fromkeys(NUMBER_STATE, empty) | dict.fromkeys(LIST_STATE, ())
    features = definitions.transaction_features(state, empty.astype(np.int64), empty)
    return {name: values.dtype for name, values in features.items()}


def _features_schema(joined: DataFrame) -> T.StructType:
    fields = [joined.schema[name] for name in PASSED_THROUGH]
    for name, dtype in _feature_types().items():
        fields.append(T.StructField(name, T.LongType() if dtype.kind == "i" else T.DoubleType(), nullable=False))
    return T.StructType(fields)


def _features_of_batches(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """mapInPandas body: the definition applied to each batch of joined rows."""
    for batch in batches:
        state = {name: batch[name].to_numpy(dtype=np.float64, na_value=np.nan) for name in NUMBER_STATE}
        state |= {name: batch[name].tolist() for name in LIST_STATE}
        features = definitions.transaction_features(state, batch["tx_us"].to_numpy(), batch["tx_amount"].to_numpy())
        yield batch[list(PASSED_THROUGH)].assign(**features)
