"""One way to get a Spark session, configured from params.yaml `spark` (local[*] by default)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def get_spark(params: dict) -> SparkSession:
    """The active session, or a new one from `params` (master, app_name and any `conf` key/values).

    Workers use this interpreter, so they can import the project; the session clock is UTC; Arrow moves frames.
    """
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(params["master"])
        .appName(params.get("app_name", "fraud_detection"))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.ui.enabled", "false")
    )
    for key, value in (params.get("conf") or {}).items():
        builder = builder.config(key, str(value))
    return builder.getOrCreate()
