"""One way to get a Spark session, configured from params.yaml `spark`."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from fraud_detection.runtime.param_model import ParamModel

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


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
