"""Scoring a day's transactions with the champion, on polars or Spark, to the same bits.

The model is the real-time service's: the registry alias imported into BentoML's store, its scorer run on the
offline features of the one definition (the `features` stage's `transaction_features`). Rows are scored in id
order, in fixed chunks of `CHUNK` transactions: BLAS rounds a float32 product differently with a row's position
in a matrix (up to 2e-7 here), so both engines feed the model the very same matrices (Spark: one pandas group per
chunk, `applyInPandas`) and get identical scores.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from fraud_detection.features.definitions import FEATURES

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import SparkSession

CHUNK = 8192
KEYS = ("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount")
SCORE = "fraud_probability"
Predict = Callable[[np.ndarray], np.ndarray]


def day_rows(features: pl.LazyFrame, day: date) -> pl.DataFrame:
    """The day's transactions (UTC) with their features, in transaction id order."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    window = (pl.col("tx_datetime") >= start) & (pl.col("tx_datetime") < start + timedelta(days=1))
    return (
        features.filter(window).select(*KEYS, *(f for f in FEATURES if f not in KEYS)).sort("transaction_id").collect()
    )


def score_chunks(predict: Predict, matrix: np.ndarray) -> np.ndarray:
    """Probabilities row by row, computed chunk by chunk (rows [0, CHUNK), [CHUNK, 2 CHUNK), ...)."""
    scores = np.empty(len(matrix), dtype=np.float64)
    for start in range(0, len(matrix), CHUNK):
        scores[start : start + CHUNK] = predict(matrix[start : start + CHUNK])
    return scores


def score_polars(rows: pl.DataFrame, predict: Predict) -> pl.DataFrame:
    matrix = rows.select(FEATURES).to_numpy().astype(np.float64)
    return rows.select(KEYS).with_columns(pl.Series(SCORE, score_chunks(predict, matrix)))


def score_spark(spark: SparkSession, rows: pl.DataFrame, predict: Predict) -> pl.DataFrame:
    """The same scores through Spark: chunk numbers from the id order, one `applyInPandas` group per chunk."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    frame = spark.createDataFrame(rows.select(*KEYS, *(f for f in FEATURES if f not in KEYS)).to_pandas())
    numbered = frame.withColumn("_chunk", F.floor((F.row_number().over(Window.orderBy("transaction_id")) - 1) / CHUNK))
    schema = T.StructType([T.StructField("transaction_id", T.LongType()), T.StructField(SCORE, T.DoubleType())])

    def score(group: pd.DataFrame) -> pd.DataFrame:
        group = group.sort_values("transaction_id")
        probabilities = predict(group[list(FEATURES)].to_numpy(dtype=np.float64))
        return group[["transaction_id"]].assign(**{SCORE: probabilities})

    scored = pl.from_arrow(numbered.groupBy("_chunk").applyInPandas(score, schema).toArrow())
    return rows.select(KEYS).join(scored, on="transaction_id", how="left").sort("transaction_id")
