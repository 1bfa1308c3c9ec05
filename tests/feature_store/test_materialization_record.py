"""The materialize stage's DVC out is a record of what it did, not the store: the views, the window (incremental),
the rows loaded per view."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl

from fraud_detection.feature_store.dataset import FeatureStoreDataset, Materialization
from fraud_detection.feature_store.definitions import SOURCE_PATHS

END = datetime(2018, 5, 10, tzinfo=UTC)


def test_the_record_says_what_each_materialization_loaded(feature_root: Path, monkeypatch) -> None:
    monkeypatch.chdir(feature_root)
    name = f"record_{uuid.uuid4().hex[:8]}"
    dataset = FeatureStoreDataset(f"data/{name}/registry.db", {"type": "sqlite", "path": f"data/{name}/online.db"},
                                  {"type": "duckdb"}, record=f"data/{name}/materialization.json")  # fmt: skip
    record = feature_root / "data" / name / "materialization.json"
    dataset.save(Materialization(END))
    first = json.loads(record.read_text())
    assert first["views"] == ["customer_daily", "customer_intraday", "terminal_daily"]
    assert (first["start"], first["end"]) == ((END - timedelta(days=1)).isoformat(), END.isoformat())
    dataset.save(Materialization(END + timedelta(days=2)))
    second = json.loads(record.read_text())
    assert (second["start"], second["end"]) == (END.isoformat(), (END + timedelta(days=2)).isoformat())
    daily = pl.read_parquet(feature_root / SOURCE_PATHS["customer_daily"])
    window = daily.filter(pl.col("event_timestamp").is_between(END, END + timedelta(days=2), closed="left"))
    assert second["rows"]["customer_daily"] == window.height > 0
