"""Nodes of the `features` stage: the stored feature state (Feast's offline sources) and every transaction's
features (the offline truth that the Feast training set and the online path must reproduce)."""

from __future__ import annotations

import polars as pl

from fraud_detection.features import polars_engine
from fraud_detection.features.definitions import INTRADAY_STATE
from fraud_detection.features.params import FeaturesParams
from fraud_detection.features.polars_engine import StateTables
from fraud_detection.runtime.frame_parts import FrameParts, part_count
from fraud_detection.runtime.spark import SparkParams


def compute_state_tables(
    transactions: pl.DataFrame, label_events: pl.DataFrame, params: FeaturesParams, spark: SparkParams
) -> StateTables:
    """customer_daily, customer_intraday and terminal_daily with the engine `features.engine` names, as the feature
    store's sources; the label stream's events give the labels known before the delay (investigations). They are
    written a part at a time (`features.part_rows`): on polars made a range of entities at a time, on Spark read
    back a part file at a time."""
    parts = part_count(transactions.height, params.part_rows)
    if params.engine == "spark":
        from fraud_detection.features import spark_engine
        from fraud_detection.runtime.spark import get_spark

        tables = spark_engine.state_table_parts(get_spark(spark), transactions, params.label_delay_days, label_events,
                                                spark.exchange_dir, parts)  # fmt: skip
    else:
        tables = polars_engine.state_table_parts(transactions, params.label_delay_days, label_events, parts)
    return polars_engine.with_stored_intraday(tables)


def compute_transaction_features(
    transactions: pl.DataFrame,
    customer_daily: pl.LazyFrame,
    customer_intraday: pl.LazyFrame,
    terminal_daily: pl.LazyFrame,
    params: FeaturesParams,
    spark: SparkParams,
) -> pl.DataFrame | FrameParts:
    """Every transaction with its labels and features (the definitions applied to the state tables; the intraday
    values from their five columns, the stored list left unread). On polars, a range of days at a time; on Spark,
    the state tables stream from their files to Spark's and the features come back a part file at a time."""
    intraday = customer_intraday.drop(INTRADAY_STATE, strict=False)
    tables = StateTables(customer_daily, intraday, terminal_daily)
    parts = part_count(transactions.height, params.part_rows)
    if params.engine == "spark":
        from fraud_detection.features import spark_engine
        from fraud_detection.runtime.spark import get_spark

        return spark_engine.transaction_feature_parts(get_spark(spark), transactions, tables, None, None,
                                                      spark.exchange_dir, parts)  # fmt: skip
    return polars_engine.transaction_feature_parts(transactions, tables, parts)
