"""The three samples monitoring compares, as whole UTC days.

- reference: the champion's training window (its registry tags `window_start`..`window_end`), with its scores;
- current: the latest `window_days` days, from the prediction log (what the service saw and scored) when the log
  holds served predictions, else from the offline features scored by the champion;
- labelled: the `quality_window_days` days whose labels are known by now (they end `label_delay_days` before the
  day after the latest transaction), scored by the champion and by the previous champion.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl

from fraud_detection.features.definitions import FEATURES

SCORE = "score"
SOURCES = ("auto", "prediction_log", "features")


@dataclass(frozen=True)
class Span:
    """Days first..last, inclusive."""

    first: date
    last: date

    def as_dict(self) -> dict[str, str]:
        return {"first": self.first.isoformat(), "last": self.last.isoformat()}


def days(frame: pl.LazyFrame | pl.DataFrame, span: Span) -> pl.DataFrame:
    """The rows of `frame` whose `tx_datetime` falls on the span's days."""
    day = pl.col("tx_datetime").dt.date()
    return frame.lazy().filter(day.is_between(span.first, span.last)).collect()


def last_day(frame: pl.LazyFrame | pl.DataFrame) -> date:
    latest = frame.lazy().select(pl.col("tx_datetime").max()).collect().item()
    if latest is None:
        raise ValueError("no transaction to monitor; expected the features stage to have written some")
    return latest.date()


def latest_span(end: date, n_days: int) -> Span:
    """The `n_days` days that end on `end`."""
    return Span(end - timedelta(days=n_days - 1), end)


def labelled_span(end: date, n_days: int, label_delay_days: int) -> Span:
    """The `n_days` days whose labels are all known the day after `end`."""
    return latest_span(end - timedelta(days=label_delay_days), n_days)


def logged_rows(records: pl.DataFrame) -> pl.DataFrame:
    """The prediction log's served, non-degraded predictions as feature rows with their score (a transaction
    served twice counts once: its latest record)."""
    if records.is_empty():
        return records
    served = records.filter((pl.col("role") == "served") & ~pl.col("degraded"))
    return served.unique("transaction_id", keep="last", maintain_order=True).select(
        "transaction_id",
        "customer_id",
        "terminal_id",
        "tx_datetime",
        *FEATURES,
        pl.col("fraud_probability").alias(SCORE),
        "model_version",
    )


def choose_current(
    features: pl.LazyFrame, logged: pl.DataFrame, source: str, window_days: int
) -> tuple[str, pl.DataFrame | None, Span]:
    """(source, the log's rows in its latest window or None, the window) for `monitor.source`."""
    if source not in SOURCES:
        raise ValueError(f"monitor.source is {source!r}; expected one of {list(SOURCES)}")
    if source == "prediction_log" and logged.is_empty():
        raise ValueError("monitor.source is prediction_log but the log holds no served prediction; expected the "
                         "service to have run (or source: auto)")  # fmt: skip
    if source != "features" and not logged.is_empty():
        span = latest_span(last_day(logged), window_days)
        return "prediction_log", days(logged, span), span
    return "features", None, latest_span(last_day(features), window_days)
