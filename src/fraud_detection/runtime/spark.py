"""One way to get a Spark session, configured from params.yaml `spark`, and the way tables pass between the driver
and Spark (`SparkExchange`)."""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from fraud_detection.runtime.frame_parts import FrameParts
from fraud_detection.runtime.param_model import ParamModel

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

UTC_MICROS = pl.Datetime("us", "UTC")


class SparkParams(ParamModel):
    """params.yaml `spark`: the session every stage whose engine is `spark` uses."""

    master: str  # local[*], or any Spark master URL for a cluster
    app_name: str
    conf: dict[str, str | int | float | bool]  # any Spark setting
    exchange_dir: str | None  # where the driver and the executors hand tables over (None: the temp folder)


def get_spark(params: SparkParams) -> SparkSession:
    """The active session, or a new one from `params` (master, app_name and any `conf` key/values).

    Workers use this interpreter, so they can import the project; the session clock is UTC; Arrow moves frames.
    """
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(params.master)
        .appName(params.app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
    )
    for key, value in params.conf.items():
        builder = builder.config(key, str(value))
    return builder.getOrCreate()


class SparkExchange:
    """Tables handed between this driver and Spark as parquet files, under a folder of their own in `root` (None:
    the system's temporary folder; on a cluster, a folder the driver and every executor reach). The driver writes
    what Spark reads; the executors write what the driver reads back, a part file at a time. So neither the driver's
    JVM nor its Python process holds a whole table: through Arrow, the JVM held every table given and collected, and
    at 3x the default data its 4 GB heap ran out. The folder goes once nothing refers to the exchange (the parts it
    gave included), or at exit."""

    def __init__(self, spark: SparkSession, root: str | None) -> None:
        self.spark = spark
        self.folder = Path(tempfile.mkdtemp(prefix="spark-exchange-", dir=root))
        spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")  # not INT96: read back exactly
        self._names = itertools.count()
        weakref.finalize(self, shutil.rmtree, self.folder, True)

    def given(self, frame: pl.DataFrame | pl.LazyFrame) -> DataFrame:
        """The frame as a Spark DataFrame, read by the executors from a file, spread over the cores (a small file is
        one split: one core)."""
        path = self.folder / f"given-{next(self._names)}.parquet"
        if isinstance(frame, pl.LazyFrame):
            frame.sink_parquet(path)
        else:
            frame.write_parquet(path)
        return self.spark.read.parquet(str(path)).repartition(self.spark.sparkContext.defaultParallelism)

    def taken(self, frame: DataFrame, order: Sequence[str], parts: int,
              finish: Callable[[pl.DataFrame], pl.DataFrame] = lambda part: part) -> FrameParts:  # fmt: skip
        """The frame written by the executors sorted by `order` (range partitions: part file i holds the i-th
        range), in at least `parts` files; read back a file at a time, timestamps as UTC microseconds."""
        folder = self.folder / f"taken-{next(self._names)}"
        ranges = max(parts, self.spark.sparkContext.defaultParallelism)
        frame.repartitionByRange(ranges, *order).sortWithinPartitions(*order).write.parquet(str(folder))
        files = sorted(folder.glob("part-*.parquet"))

        def read(exchange: SparkExchange = self) -> Iterator[pl.DataFrame]:  # the parts keep the exchange's files
            for path in files:
                part = pl.read_parquet(path)
                timestamps = [name for name, dtype in part.schema.items() if isinstance(dtype, pl.Datetime)]
                yield finish(part.with_columns(pl.col(timestamps).dt.convert_time_zone("UTC").cast(UTC_MICROS)))

        return FrameParts(read)
