"""The materialize stage loads the online store up to the instant params.yaml asks for."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl

from fraud_detection.pipelines.materialize.nodes import plan_materialization


def _table(*stamps: datetime) -> pl.LazyFrame:
    return pl.LazyFrame({"event_timestamp": list(stamps)}, schema={"event_timestamp": pl.Datetime("us", "UTC")})


def test_latest_is_the_newest_row_of_any_table() -> None:
    newest = datetime(2018, 10, 1, tzinfo=UTC)
    plan = plan_materialization(
        _table(datetime(2018, 9, 30, tzinfo=UTC)), _table(datetime(2018, 9, 30, 23, tzinfo=UTC)), _table(newest),
        {"end": "latest"},
    )  # fmt: skip
    assert plan.end == newest


def test_an_iso_date_is_taken_as_utc() -> None:
    plan = plan_materialization(_table(), _table(), _table(), {"end": "2018-06-01"})
    assert plan.end == datetime(2018, 6, 1, tzinfo=UTC)
