"""The materialize stage loads the online store up to the instant params.yaml asks for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import polars as pl
import pytest

from fraud_detection.feature_store.params import MaterializeParams
from fraud_detection.pipelines.materialize.nodes import plan_materialization
from fraud_detection.runtime.params import ParamsError, checked_params


def _table(*stamps: datetime) -> pl.LazyFrame:
    return pl.LazyFrame({"event_timestamp": list(stamps)}, schema={"event_timestamp": pl.Datetime("us", "UTC")})


def test_latest_is_the_newest_row_of_any_table(params) -> None:
    newest = datetime(2018, 10, 1, tzinfo=UTC)
    assert params.materialize.end == "latest"
    plan = plan_materialization(
        _table(datetime(2018, 9, 30, tzinfo=UTC)), _table(datetime(2018, 9, 30, 23, tzinfo=UTC)), _table(newest),
        params.materialize,
    )  # fmt: skip
    assert plan.end == newest


def test_an_iso_date_is_taken_as_utc() -> None:
    plan = plan_materialization(_table(), _table(), _table(), MaterializeParams(end="2018-06-01"))
    assert plan.end == datetime(2018, 6, 1, tzinfo=UTC)


def test_an_iso_time_with_an_offset_keeps_its_instant() -> None:
    plan = plan_materialization(_table(), _table(), _table(), MaterializeParams(end="2018-06-01T02:00:00+02:00"))
    assert plan.end == datetime(2018, 6, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    assert plan.end == datetime(2018, 6, 1, tzinfo=UTC)


def test_an_end_that_is_neither_latest_nor_a_time_is_named(config_loader) -> None:
    raw = config_loader["parameters"]
    with pytest.raises(ParamsError) as error:
        checked_params({**raw, "materialize": {"end": "soon"}})
    assert str(error.value) == (
        "params.yaml materialize.end='soon': expected 'latest' or a date or date-time (ISO 8601, e.g. 2018-04-01 or "
        "2018-04-01T12:00:00Z)"
    )
