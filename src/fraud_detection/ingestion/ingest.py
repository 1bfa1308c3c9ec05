"""Ingestion as one function: map, validate with the chosen engine, check the contract, summarise, gate."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, NamedTuple

import polars as pl

from fraud_detection.ingestion.errors import IngestionError
from fraud_detection.ingestion.params import IngestParams
from fraud_detection.ingestion.schema import REASON, ROW_NUMBER, Limits, transactions_contract
from fraud_detection.ingestion.sources import as_text, map_columns

if TYPE_CHECKING:
    from fraud_detection.runtime.spark import SparkParams

log = logging.getLogger(__name__)


class IngestResult(NamedTuple):
    transactions: pl.DataFrame
    quarantine: pl.DataFrame
    summary: dict


def ingest(raw: pl.DataFrame, params: IngestParams, spark: SparkParams) -> IngestResult:
    """Validate `raw` source rows. Raises IngestionError, writing nothing, if too many rows are bad."""
    mapped, dropped = map_columns(raw, params.column_map)
    limits = Limits.from_params(params)
    accepted, rejected = _validate(mapped, limits, params.engine, spark)
    transactions_contract(limits).validate(accepted)
    originals = as_text(mapped.join(rejected.select(ROW_NUMBER), on=ROW_NUMBER, how="semi"))  # rejected rows only
    quarantine = rejected.join(originals, on=ROW_NUMBER, how="left").sort(ROW_NUMBER)
    summary = summarise(mapped.height, accepted, quarantine, dropped, params.engine)
    if summary["rows_read"] != summary["rows_accepted"] + summary["rows_quarantined"]:
        raise AssertionError(f"rows not conserved: {summary}")  # a bug in an engine, never bad data
    _check_quarantine_fraction(summary, params.max_quarantine_fraction)
    return IngestResult(accepted, quarantine, summary)


def _validate(
    mapped: pl.DataFrame, limits: Limits, engine: str, spark: SparkParams
) -> tuple[pl.DataFrame, pl.DataFrame]:
    if engine == "polars":
        from fraud_detection.ingestion.polars_engine import validate

        return validate(mapped, limits)
    if engine == "spark":
        from fraud_detection.ingestion.spark_engine import validate as validate_on_spark
        from fraud_detection.runtime.spark import get_spark

        return validate_on_spark(get_spark(spark), mapped, limits, spark.exchange_dir)
    raise IngestionError(f"ingest.engine is {engine!r}; expected polars or spark")


def summarise(
    rows_read: int, accepted: pl.DataFrame, quarantine: pl.DataFrame, dropped: list[str], engine: str
) -> dict:
    by_reason = quarantine.group_by(REASON).len().sort(REASON)
    first, last = (accepted["tx_datetime"].min(), accepted["tx_datetime"].max()) if accepted.height else (None, None)
    return {
        "engine": engine,
        "rows_read": rows_read,
        "rows_accepted": accepted.height,
        "rows_quarantined": quarantine.height,
        "quarantine_fraction": round(quarantine.height / rows_read, 6) if rows_read else 0.0,
        "quarantined_by_reason": dict(zip(by_reason[REASON], by_reason["len"], strict=True)),
        "dropped_columns": dropped,
        "fraud_rate": round(float(accepted["tx_fraud"].mean()), 6) if accepted.height else None,
        "first_tx_datetime": first.isoformat() if first else None,
        "last_tx_datetime": last.isoformat() if last else None,
    }


def _check_quarantine_fraction(summary: dict, maximum: float) -> None:
    if summary["rows_read"] == 0:
        raise IngestionError("the source has no rows; expected at least one transaction")
    if summary["quarantine_fraction"] > maximum:
        top = sorted(summary["quarantined_by_reason"].items(), key=lambda kv: -kv[1])[:5]
        raise IngestionError(
            f"{summary['rows_quarantined']} of {summary['rows_read']} rows "
            f"({summary['quarantine_fraction']:.2%}) failed validation, above "
            f"ingest.max_quarantine_fraction = {maximum:.2%}; top reasons: {dict(top)}. "
            "Nothing was written: the previous outputs are unchanged."
        )
    log.info(
        "accepted %d of %d rows, quarantined %d %s",
        summary["rows_accepted"],
        summary["rows_read"],
        summary["rows_quarantined"],
        summary["quarantined_by_reason"],
    )
