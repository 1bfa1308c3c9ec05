"""Nodes of the `materialize` stage: what to load into the online store (the catalog's feature_store applies the
definitions and materializes when it is saved)."""

from __future__ import annotations

from datetime import UTC

import polars as pl

from fraud_detection.feature_store.dataset import Materialization
from fraud_detection.feature_store.params import MaterializeParams

LATEST = "latest"


def plan_materialization(
    customer_daily: pl.LazyFrame,
    customer_intraday: pl.LazyFrame,
    terminal_daily: pl.LazyFrame,
    params: MaterializeParams,
) -> Materialization:
    """Materialize up to `materialize.end`: an ISO date, or `latest` (the newest row of the state tables, i.e. the
    start of the day after the last transaction)."""
    if params.end != LATEST:
        end = params.end
        return Materialization(end=end if end.tzinfo else end.replace(tzinfo=UTC))
    newest = [
        t.select(pl.col("event_timestamp").max()).collect().item()
        for t in (customer_daily, customer_intraday, terminal_daily)
    ]
    return Materialization(end=max(newest))
