"""The ingest pipeline on real files: outputs are written, and a failing source leaves them untouched."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from fraud_detection.datasets import DatePartitionsDataset, JSONDataset, ParquetDataset, PartitionedParquetDataset
from fraud_detection.ingestion.errors import IngestionError
from fraud_detection.pipelines.ingest import create_pipeline
from fraud_detection.runtime.params import Params
from fraud_detection.simulation.simulator import SimulationConfig, simulate_transactions
from tests.conftest import changed
from tests.ingestion.messy_source import COLUMN_MAP, messy_source
from tests.pipelines.kedro_catalog import param_entries


def _catalog(root: Path, params: Params) -> DataCatalog:
    return DataCatalog(
        {
            "simulated_transactions": ParquetDataset(str(root / "simulated.parquet"), lazy=True),
            "traffic_transactions": DatePartitionsDataset(str(root / "traffic"), missing_ok=True),
            "transactions": PartitionedParquetDataset(str(root / "transactions"), "tx_datetime"),
            "quarantine": ParquetDataset(str(root / "quarantine.parquet")),
            "ingest_summary": JSONDataset(str(root / "ingest.json")),
            **param_entries(create_pipeline(), params),
        }
    )


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _run(root: Path, params: Params, **ingest: object) -> None:
    """The ingest pipeline on `params` with `ingest` changed."""
    SequentialRunner().run(create_pipeline(), _catalog(root, changed(params, ingest=ingest)))


def test_ingest_writes_partitions_quarantine_and_summary(tmp_path: Path, params: Params) -> None:
    raw, expected = messy_source()
    raw.write_csv(tmp_path / "source.csv")
    out = tmp_path / "out"
    _run(out, params, source=str(tmp_path / "source.csv"), column_map=COLUMN_MAP, max_quarantine_fraction=1.0)

    days = sorted(p.parent.name for p in (out / "transactions").glob("date=*/part-0.parquet"))
    assert days == ["date=2016-02-29", "date=2018-04-02"]
    accepted = PartitionedParquetDataset(str(out / "transactions"), "tx_datetime").load()
    quarantine = pl.read_parquet(out / "quarantine.parquet")
    assert accepted.height + quarantine.height == raw.height
    assert JSONDataset(str(out / "ingest.json")).load()["rows_quarantined"] == sum(e is not None for e in expected)


def test_a_source_over_the_quarantine_ceiling_leaves_previous_outputs_untouched(tmp_path: Path, params: Params) -> None:
    out = tmp_path / "out"
    good = pl.DataFrame(messy_source()[0].head(7))  # the good rows only
    good.write_csv(tmp_path / "good.csv")
    assert params.ingest.max_quarantine_fraction < 0.5
    _run(out, params, source=str(tmp_path / "good.csv"), column_map=COLUMN_MAP)
    before = _snapshot(out)
    assert "ingest.json" in before and "quarantine.parquet" in before

    messy_source()[0].write_csv(tmp_path / "bad.csv")
    with pytest.raises(Exception) as error:
        _run(out, params, source=str(tmp_path / "bad.csv"), column_map=COLUMN_MAP)
    assert isinstance(error.value, IngestionError) or isinstance(error.value.__cause__, IngestionError)
    assert _snapshot(out) == before


def test_the_simulator_source_includes_the_days_traffic_played(tmp_path: Path, params: Params) -> None:
    """`fraud-detection traffic run` appends its finished days to `traffic_transactions`; the next ingest reads them
    beside the simulator's output and validates them like any row."""
    simulated = simulate_transactions(SimulationConfig.from_params(changed(params.simulate, profile="small")))
    days = simulated["tx_datetime"].dt.date()
    out = tmp_path / "out"
    simulated.filter(days < days.max()).write_parquet(out / "simulated.parquet", mkdir=True)
    played = simulated.filter(days == days.max())
    DatePartitionsDataset(str(out / "traffic")).save({days.max().isoformat(): played})
    _run(out, params, source="simulate")
    accepted = PartitionedParquetDataset(str(out / "transactions"), "tx_datetime").load()
    assert accepted.height == simulated.height and accepted["transaction_id"].is_unique().all()
