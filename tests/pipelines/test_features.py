"""The features stage: the state tables (Feast's offline sources) and every transaction's features, with the engine
and the label delay params.yaml `features` names, through the Kedro pipeline and its parquet datasets."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from polars.testing import assert_frame_equal

from fraud_detection.datasets import ParquetDataset
from fraud_detection.features import polars_engine
from fraud_detection.features.definitions import INTRADAY_STATE
from fraud_detection.feedback.labels import LabelEventsDataset, LabelFiles, events_frame
from fraud_detection.pipelines.features import create_pipeline
from fraud_detection.pipelines.features.nodes import compute_state_tables, compute_transaction_features
from fraud_detection.pipelines.features.pipeline import STATE_TABLES
from fraud_detection.runtime.frame_parts import FrameParts
from fraud_detection.runtime.params import Params, ParamsError, checked_params
from fraud_detection.simulation.params import SimulateParams
from fraud_detection.simulation.simulator import SimulationConfig, simulate_transactions
from tests.conftest import SPARK_TEST_PARAMS, changed
from tests.features.replay import investigation_labels
from tests.pipelines.kedro_catalog import param_entries

TOLERANCE = {"rel_tol": 1e-9, "abs_tol": 1e-9}
NO_LABELS = events_frame([])


@pytest.fixture(scope="module")
def transactions(small_simulate_params: SimulateParams) -> pl.DataFrame:
    """The small simulated set the `small_training_set` fixture is computed from."""
    return simulate_transactions(SimulationConfig.from_params(changed(small_simulate_params, seed=0)))


def run_features(root: Path, transactions: pl.DataFrame, params: Params) -> dict[str, pl.DataFrame]:
    """The features pipeline with the catalog's dataset types (state tables read back lazily; the label stream's
    files under `root/labels`, none unless a test wrote them), under `root`."""
    outputs = {name: ParquetDataset(str(root / f"{name}.parquet"), lazy=True) for name in STATE_TABLES}
    outputs["transaction_features"] = ParquetDataset(str(root / "transaction_features.parquet"))
    inputs = {"transactions": MemoryDataset(transactions), "label_events": LabelEventsDataset(str(root / "labels"))}
    catalog = DataCatalog({**inputs, **outputs, **param_entries(create_pipeline(), params)})
    SequentialRunner().run(create_pipeline(), catalog)
    return {name: pl.read_parquet(root / f"{name}.parquet") for name in outputs}


def test_the_polars_engine_gives_the_training_sets_features(
    tmp_path: Path, transactions: pl.DataFrame, params: Params, small_training_set: pl.DataFrame
) -> None:
    assert params.features.engine == "polars"
    written = run_features(tmp_path, transactions, params)
    assert_frame_equal(written["transaction_features"], small_training_set)
    expected = polars_engine.state_tables(transactions, params.features.label_delay_days)
    assert_frame_equal(written["customer_daily"], expected.customer_daily)
    assert_frame_equal(written["terminal_daily"], expected.terminal_daily)
    assert INTRADAY_STATE in written["customer_intraday"].columns, "the online store's intraday list is stored"
    assert_frame_equal(written["customer_intraday"].drop(INTRADAY_STATE), expected.customer_intraday)


def test_in_parts_the_stage_writes_the_same_files(
    tmp_path: Path, transactions: pl.DataFrame, params: Params, small_training_set: pl.DataFrame
) -> None:
    in_thirds = changed(params, features=changed(params.features, part_rows=transactions.height // 3))
    written = run_features(tmp_path, transactions, in_thirds)
    assert_frame_equal(written["transaction_features"], small_training_set)
    expected = polars_engine.state_tables(transactions, params.features.label_delay_days)
    for name in ("customer_daily", "terminal_daily"):
        assert_frame_equal(written[name], getattr(expected, name))
    assert_frame_equal(written["customer_intraday"].drop(INTRADAY_STATE), expected.customer_intraday)
    groups = pq.ParquetFile(tmp_path / "terminal_daily.parquet").metadata.num_row_groups
    assert groups >= 3, "written a part (about a third of the terminals) at a time"


def test_the_label_streams_events_reach_the_terminal_state(
    tmp_path: Path, transactions: pl.DataFrame, params: Params
) -> None:
    events = investigation_labels(transactions)
    LabelFiles(tmp_path / "labels").write(events.with_columns(pl.col("known_at").dt.to_string()).to_dicts())
    written = run_features(tmp_path, transactions, params)
    expected = polars_engine.state_tables(transactions, params.features.label_delay_days, events)
    assert_frame_equal(written["terminal_daily"], expected.terminal_daily)
    assert written["terminal_daily"]["terminal_early_labels_from"].list.len().sum() > 1000


def test_the_label_delay_comes_from_the_params(transactions: pl.DataFrame, params: Params) -> None:
    three_days = changed(params.features, label_delay_days=3)
    terminal_daily = compute_state_tables(transactions, NO_LABELS, three_days, params.spark).terminal_daily.collect()
    assert_frame_equal(terminal_daily, polars_engine.state_tables(transactions, 3).terminal_daily)
    seven_days = polars_engine.state_tables(transactions, params.features.label_delay_days).terminal_daily
    assert not terminal_daily.equals(seven_days), "terminal risk windows end at the label delay"


@pytest.mark.spark
def test_the_spark_engine_gives_the_polars_engines_tables_and_features(
    spark, transactions: pl.DataFrame, params: Params, small_training_set: pl.DataFrame
) -> None:
    on_spark = changed(params.features, engine="spark")
    tables = [parts.collect() for parts in compute_state_tables(transactions, NO_LABELS, on_spark, SPARK_TEST_PARAMS)]
    expected = polars_engine.with_stored_intraday(
        polars_engine.state_tables(transactions, params.features.label_delay_days)
    )
    for got, table in zip(tables, expected, strict=True):
        assert_frame_equal(got, table, **TOLERANCE)
    lazy = [table.lazy() for table in tables]
    features = compute_transaction_features(transactions, *lazy, on_spark, SPARK_TEST_PARAMS)
    assert isinstance(features, FrameParts), "the features come back a part file at a time"
    assert_frame_equal(features.collect(), small_training_set, **TOLERANCE)


def test_an_unknown_engine_is_named(config_loader) -> None:
    raw = config_loader["parameters"]
    with pytest.raises(ParamsError) as error:
        checked_params({**raw, "features": {**raw["features"], "engine": "pandas"}})
    assert str(error.value) == "params.yaml features.engine='pandas': expected 'polars' or 'spark'"
