"""Ingestion: every bad row is quarantined with the right reason, nothing is lost, bad sources fail loudly."""

from __future__ import annotations

from datetime import datetime

import polars as pl
import pytest

from fraud_detection.ingestion.errors import IngestionError
from fraud_detection.ingestion.ingest import ingest
from fraud_detection.ingestion.params import IngestParams
from fraud_detection.ingestion.sources import map_columns, read_files
from fraud_detection.runtime.params import Params
from tests.conftest import changed, params_problem
from tests.ingestion.messy_source import COLUMN_MAP, DEFECTS, GOOD_TIMESTAMPS, messy_source


@pytest.fixture
def ingest_params(params: Params) -> IngestParams:
    """params.yaml `ingest` for the messy source: its column names, and no quarantine ceiling."""
    return changed(params.ingest, column_map=COLUMN_MAP, max_quarantine_fraction=1.0)


def test_every_defect_is_quarantined_with_its_reason(ingest_params: IngestParams, params: Params) -> None:
    raw, expected = messy_source()
    result = ingest(raw, ingest_params, params.spark)
    reasons = dict(zip(result.quarantine["row_number"], result.quarantine["reason"], strict=True))
    assert [reasons.get(i) for i in range(raw.height)] == expected
    assert len({reason for _, reason in DEFECTS}) >= 10


def test_rows_are_conserved_and_summarised(ingest_params: IngestParams, params: Params) -> None:
    raw, expected = messy_source()
    result = ingest(raw, ingest_params, params.spark)
    summary = result.summary
    assert summary["rows_read"] == raw.height == result.transactions.height + result.quarantine.height
    assert summary["rows_quarantined"] == sum(r is not None for r in expected)
    assert sum(summary["quarantined_by_reason"].values()) == summary["rows_quarantined"]
    assert summary["quarantined_by_reason"]["tx_datetime:unparseable"] == 3
    assert summary["dropped_columns"] == ["NOTE"]


def test_quarantine_keeps_the_original_values(ingest_params: IngestParams, params: Params) -> None:
    raw, _ = messy_source()
    quarantine = ingest(raw, ingest_params, params.spark).quarantine
    row = quarantine.filter(pl.col("reason") == "tx_amount:unparseable").row(0, named=True)
    assert row["tx_amount"] == "12,50" and row["terminal_id"] == "9"
    assert quarantine.filter(pl.col("reason") == "terminal_id:unparseable")["terminal_id"].item() == "T-9"


def test_accepted_rows_are_typed_sorted_and_in_utc(ingest_params: IngestParams, params: Params) -> None:
    raw, _ = messy_source()
    accepted = ingest(raw, ingest_params, params.spark).transactions
    assert accepted.schema == pl.Schema(
        {
            "transaction_id": pl.Int64,
            "tx_datetime": pl.Datetime("us", "UTC"),
            "customer_id": pl.Int64,
            "terminal_id": pl.Int64,
            "tx_amount": pl.Float64,
            "tx_fraud": pl.Int8,
            "tx_fraud_scenario": pl.Int8,
        }
    )
    by_id = dict(zip(accepted["transaction_id"], accepted["tx_datetime"], strict=True))
    for i, instant in enumerate(GOOD_TIMESTAMPS.values()):
        assert by_id[101 + i] == datetime.fromisoformat(instant), list(GOOD_TIMESTAMPS)[i]
    assert accepted["tx_datetime"].is_sorted()


def test_typed_sources_are_coerced_where_unambiguous(ingest_params: IngestParams, params: Params) -> None:
    raw = pl.DataFrame(
        {
            "transaction_id": [1.0, 2.0, 3.5],
            "tx_datetime": [datetime(2018, 4, 1, 12), datetime(2018, 4, 1, 13), datetime(2018, 4, 1, 14)],
            "customer_id": ["5", "6", "7"],
            "terminal_id": [1, 2, 3],
            "tx_amount": [10, 20, 30],
            "tx_fraud": [False, True, False],
        }
    )
    unmapped = IngestParams.model_validate({**ingest_params.model_dump(), "column_map": {}})  # ours already
    result = ingest(raw, unmapped, params.spark)
    assert result.transactions["transaction_id"].to_list() == [1, 2]
    assert result.transactions["tx_fraud"].to_list() == [0, 1]
    assert result.transactions["tx_fraud_scenario"].is_null().all(), "an absent optional column is null"
    assert result.quarantine["reason"].to_list() == ["transaction_id:unparseable"]


def test_column_map_renames_source_columns(ingest_params: IngestParams) -> None:
    raw, _ = messy_source()
    mapped, dropped = map_columns(raw, COLUMN_MAP)
    assert mapped.columns == ["row_number", *COLUMN_MAP.values()]
    assert dropped == ["NOTE"]


def test_missing_columns_are_named_with_what_the_source_has() -> None:
    raw, _ = messy_source()
    with pytest.raises(IngestionError) as error:
        map_columns(raw, {"TX_ID": "transaction_id"})
    message = str(error.value)
    assert "lacks required columns ['tx_datetime', 'customer_id'" in message
    assert "'TX_DATETIME'" in message and "ingest.column_map" in message


def test_a_column_map_naming_absent_columns_is_an_error() -> None:
    raw, _ = messy_source()
    with pytest.raises(IngestionError, match=r"names source columns \['TXN_TIME'\]"):
        map_columns(raw, {**COLUMN_MAP, "TXN_TIME": "tx_datetime"})


def test_numeric_timestamps_are_refused_as_ambiguous(ingest_params: IngestParams, params: Params) -> None:
    raw = messy_source()[0].with_columns(pl.lit(1522540800).alias("TX_DATETIME"))
    with pytest.raises(IngestionError, match=r"tx_datetime has type Int32; expected a datetime, a date or an ISO"):
        ingest(raw, ingest_params, params.spark)


def test_too_many_bad_rows_fail_with_the_reasons(ingest_params: IngestParams, params: Params) -> None:
    raw, expected = messy_source()
    with pytest.raises(IngestionError) as error:
        ingest(raw, changed(ingest_params, max_quarantine_fraction=0.05), params.spark)
    message = str(error.value)
    assert f"{sum(r is not None for r in expected)} of {raw.height} rows" in message
    assert "ingest.max_quarantine_fraction = 5.00%" in message and "tx_datetime:unparseable" in message


def test_an_empty_source_fails(ingest_params: IngestParams, params: Params) -> None:
    raw = messy_source()[0].clear()
    with pytest.raises(IngestionError, match="no rows"):
        ingest(raw, ingest_params, params.spark)


def test_an_unknown_engine_is_named(config_loader) -> None:
    raw = config_loader["parameters"]
    expected = "params.yaml ingest.engine='pandas': expected 'polars' or 'spark'"
    assert params_problem(raw, "ingest", engine="pandas") == expected


def test_bad_limits_are_named(config_loader) -> None:
    raw = config_loader["parameters"]
    reversed_range = params_problem(
        config_loader["parameters"], "ingest", valid_from="2100-01-01", valid_to="2000-01-01"
    )
    assert reversed_range == (
        "params.yaml ingest: expected valid_from before valid_to (2100-01-01 00:00:00 .. 2000-01-01 00:00:00)"
    )
    fraction = params_problem(raw, "ingest", max_quarantine_fraction=1.5)
    assert fraction == "params.yaml ingest.max_quarantine_fraction=1.5: expected a number in [0, 1]"
    assert params_problem(raw, "ingest", valid_to="the future") == (
        "params.yaml ingest.valid_to='the future': expected a date or date-time (ISO 8601, e.g. 2018-04-01 or "
        "2018-04-01T12:00:00Z)"
    )


def test_read_files_reads_csv_as_text_parquet_typed_and_folders(tmp_path) -> None:
    raw, _ = messy_source()
    raw.head(10).write_csv(tmp_path / "a.csv")
    typed = raw.slice(10).with_columns(pl.col("TX_ID").cast(pl.Int64, strict=False))
    typed.write_parquet(tmp_path / "b.parquet")
    assert read_files(tmp_path / "a.csv").equals(raw.head(10))
    both = read_files(tmp_path)
    assert both.height == raw.height and both.schema["TX_ID"] == pl.String
    with pytest.raises(IngestionError, match="does not exist"):
        read_files(tmp_path / "nope.csv")
