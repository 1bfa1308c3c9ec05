"""Nodes of the `ingest` stage."""

import polars as pl

from fraud_detection.ingestion.ingest import IngestResult, ingest
from fraud_detection.ingestion.params import IngestParams
from fraud_detection.ingestion.sources import read_files
from fraud_detection.runtime.spark import SparkParams

SIMULATOR = "simulate"


def read_source(params: IngestParams, simulated: pl.LazyFrame, traffic: pl.LazyFrame | None) -> pl.DataFrame:
    """The rows to ingest: the simulator's output and the days `fraud-detection traffic run` played after it
    (`ingest.source: simulate`), or the user's files at a path."""
    if params.source != SIMULATOR:
        return read_files(params.source)
    return simulated.collect() if traffic is None else pl.concat([simulated, traffic], how="vertical").collect()


def validate_transactions(raw: pl.DataFrame, params: IngestParams, spark: SparkParams) -> IngestResult:
    """Accepted transactions, quarantined rows with reasons, and the summary; raises before writing anything
    if more than `ingest.max_quarantine_fraction` of the rows are bad."""
    return ingest(raw, params, spark)
