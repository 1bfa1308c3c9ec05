"""The training_set stage: labelled transactions joined point-in-time through Feast's offline store, checked row for
row against the features stage's table (no skew between Feast and the batch engine)."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime

import polars as pl
import pyarrow.parquet as pq
import pytest
from kedro.io import DatasetError
from polars.testing import assert_frame_equal

from fraud_detection.datasets import ParquetDataset
from fraud_detection.feature_store.dataset import apply_and_materialize
from fraud_detection.features.definitions import FEATURES
from fraud_detection.pipelines.training_set.nodes import (
    ENTITY_COLUMNS,
    build_training_set,
    check_against_offline_features,
    checked_training_set,
)
from fraud_detection.runtime.params import Params
from tests.conftest import changed, params_problem
from tests.feature_store.conftest import feature_root, label_events, offline_features, sqlite_store, transactions

__all__ = ["feature_root", "label_events", "offline_features", "sqlite_store", "transactions"]


def test_the_feast_training_set_passes_the_check(
    sqlite_store, transactions: pl.DataFrame, offline_features: pl.DataFrame, params: Params
) -> None:
    """params.yaml's feature service gives every transaction, in time order, with its label and features."""
    apply_and_materialize(sqlite_store, datetime(2018, 4, 2, tzinfo=UTC))
    training_set = build_training_set(sqlite_store, transactions, params.training_set)
    assert training_set.columns[: len(ENTITY_COLUMNS)] == list(ENTITY_COLUMNS)
    assert set(FEATURES) <= set(training_set.columns)
    in_order = offline_features.sort("tx_datetime", "transaction_id")
    assert_frame_equal(training_set.select(ENTITY_COLUMNS), in_order.select(ENTITY_COLUMNS))
    assert check_against_offline_features(training_set, offline_features.lazy()) is training_set


def test_chunked_retrieval_equals_one_shot_retrieval(
    sqlite_store, transactions: pl.DataFrame, params: Params, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of entity rows in time order (a partial last one included) give the same rows, order and values as one
    retrieval of every row."""
    apply_and_materialize(sqlite_store, datetime(2018, 4, 2, tzinfo=UTC))
    retrievals = []
    retrieve = sqlite_store.get_historical_features

    def counted(*args, **kwargs):
        retrievals.append(len(kwargs["entity_df"]))
        return retrieve(*args, **kwargs)

    monkeypatch.setattr(sqlite_store, "get_historical_features", counted)
    one_shot = build_training_set(sqlite_store, transactions, changed(params.training_set, chunk_rows=10**9))
    chunk_rows = transactions.height // 3 + 1
    chunked = build_training_set(sqlite_store, transactions.sample(fraction=1.0, shuffle=True, seed=1),
                                 changed(params.training_set, chunk_rows=chunk_rows))  # fmt: skip
    assert retrievals == [transactions.height, chunk_rows, chunk_rows, transactions.height - 2 * chunk_rows]
    assert_frame_equal(chunked, one_shot)


def test_the_stage_writes_chunk_by_chunk_each_checked(
    sqlite_store, transactions: pl.DataFrame, offline_features: pl.DataFrame, params: Params, tmp_path
) -> None:
    """The stage's node: the same table, written a chunk at a time; a chunk unlike the features table, or a features
    table with a transaction the training set lacks, fails the write and leaves no file."""
    apply_and_materialize(sqlite_store, datetime(2018, 4, 2, tzinfo=UTC))
    quarters = changed(params.training_set, chunk_rows=transactions.height // 4 + 1)
    dataset = ParquetDataset(str(tmp_path / "training_set.parquet"))
    dataset.save(checked_training_set(sqlite_store, transactions, offline_features.lazy(), quarters))
    assert_frame_equal(dataset.load(), build_training_set(sqlite_store, transactions, params.training_set))
    assert pq.ParquetFile(tmp_path / "training_set.parquet").metadata.num_row_groups == 4, "a row group a chunk"

    in_order = offline_features.sort("tx_datetime", "transaction_id")
    missing_last = in_order.slice(0, in_order.height - 1).lazy()
    extra = pl.concat([in_order, in_order.tail(1).with_columns(pl.col("transaction_id") + 10**9)]).lazy()
    count = rf"has {transactions.height} rows, the features table {transactions.height + 1}"
    for features, problem in ((missing_last, "of them: expected the same transactions"), (extra, count)):
        target = ParquetDataset(str(tmp_path / "refused.parquet"))
        with pytest.raises(DatasetError, match=problem):
            target.save(checked_training_set(sqlite_store, transactions, features, quarters))
        assert not (tmp_path / "refused.parquet").exists()


def test_feasts_known_warnings_stay_out_of_the_log(sqlite_store, transactions: pl.DataFrame, params: Params) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        apply_and_materialize(sqlite_store, datetime(2018, 4, 2, tzinfo=UTC))
        build_training_set(sqlite_store, transactions.head(500), params.training_set)
    known = ("fetch_arrow_table", "On demand feature view")
    assert [str(w.message) for w in caught if any(text in str(w.message) for text in known)] == []


def test_a_chunk_size_below_one_is_a_clear_error(config_loader) -> None:
    assert params_problem(config_loader["parameters"], "training_set", chunk_rows=0) == (
        "params.yaml training_set.chunk_rows=0: expected an integer >= 1"
    )


def test_a_skewed_feature_is_named_with_its_transaction(offline_features: pl.DataFrame) -> None:
    reference = offline_features.sort("tx_datetime", "transaction_id")
    row = reference.height // 2
    transaction_id = reference["transaction_id"][row]
    value = float(reference["terminal_risk_7d"][row])
    skewed = reference.with_columns(
        pl.when(pl.int_range(pl.len()) == row)
        .then(pl.col("terminal_risk_7d") + 0.5)
        .otherwise(pl.col("terminal_risk_7d"))
        .alias("terminal_risk_7d")
    )
    expected = (
        f"feature terminal_risk_7d of transaction {transaction_id} is {value + 0.5} through Feast but {value} in the "
        "features table (1 rows differ)"
    )
    with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        check_against_offline_features(skewed, offline_features.lazy())
    tiny = reference.with_columns(pl.col("tx_amount") + 1e-12)  # within the tolerance: not skew
    assert check_against_offline_features(tiny, offline_features.lazy()) is tiny


def test_a_missing_or_reordered_transaction_is_an_error(offline_features: pl.DataFrame) -> None:
    reference = offline_features.sort("tx_datetime", "transaction_id")
    with pytest.raises(ValueError, match=rf"training set has {reference.height - 1} rows, the features table "
                                         rf"{reference.height}: expected the same transactions"):  # fmt: skip
        check_against_offline_features(reference.slice(1), offline_features.lazy())
    swapped = pl.concat([reference.slice(1, 1), reference.slice(0, 1), reference.slice(2)])
    with pytest.raises(ValueError, match="expected the same transactions in the same order"):
        check_against_offline_features(swapped, offline_features.lazy())
