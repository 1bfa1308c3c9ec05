"""Nodes of the `training_set` stage: labelled transactions joined point-in-time through Feast's offline store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from fraud_detection.feature_store import quiet_feast
from fraud_detection.feature_store.params import TrainingSetParams
from fraud_detection.features.definitions import FEATURES, ON_DEMAND_FEATURES
from fraud_detection.runtime.frame_parts import FrameParts

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore

ENTITY_COLUMNS = ("transaction_id", "customer_id", "terminal_id", "tx_datetime", "tx_amount", "tx_fraud")
TOLERANCE = 1e-9


def checked_training_set(
    store: FeatureStore, transactions: pl.DataFrame, transaction_features: pl.LazyFrame, params: TrainingSetParams
) -> FrameParts:
    """The training set as it is written: retrieved a chunk at a time (`retrieved_chunks`), each chunk checked against
    the features stage's rows of the same transactions (`check_chunk`), and every transaction there once (a count
    check after the last chunk, before the file is complete). Memory: the transactions and one chunk."""

    def parts() -> Iterator[pl.DataFrame]:
        rows = 0
        for chunk in retrieved_chunks(store, transactions, params):
            rows += chunk.height
            yield check_chunk(chunk, transaction_features)
        _check_count(rows, transaction_features)

    return FrameParts(parts)


def build_training_set(store: FeatureStore, transactions: pl.DataFrame, params: TrainingSetParams) -> pl.DataFrame:
    """One row per transaction: ids, time, label and the feature service's features, in transaction order, in memory."""
    return pl.concat(retrieved_chunks(store, transactions, params), how="vertical", rechunk=False)


def retrieved_chunks(
    store: FeatureStore, transactions: pl.DataFrame, params: TrainingSetParams
) -> Iterator[pl.DataFrame]:
    """The training set in time-ordered chunks of at most `params.chunk_rows` entity rows, each turned into polars at
    once: Feast's point-in-time join and its pandas frames grow with the chunk, not with the data. Each chunk's rows
    are gathered by the sort order (no sorted copy of the transactions). No transaction: one empty retrieval."""
    entity_rows = transactions.select(*ENTITY_COLUMNS, pl.col("tx_datetime").alias("event_timestamp"))
    order = entity_rows.select(pl.arg_sort_by("tx_datetime", "transaction_id")).to_series()
    service = store.get_feature_service(params.feature_service)
    for start in range(0, max(entity_rows.height, 1), params.chunk_rows):
        yield _retrieve(store, service, entity_rows.gather(order.slice(start, params.chunk_rows)))


def _retrieve(store: FeatureStore, service: FeatureService, entity_rows: pl.DataFrame) -> pl.DataFrame:
    """Feast's point-in-time join of `entity_rows` with the feature service, in transaction order."""
    with quiet_feast():
        joined = store.get_historical_features(entity_df=entity_rows.to_pandas(), features=service).to_df()
    result = pl.from_pandas(joined[[*ENTITY_COLUMNS, *ON_DEMAND_FEATURES]])
    del joined
    return (
        result.with_columns(pl.col("tx_datetime").dt.convert_time_zone("UTC").dt.cast_time_unit("us"))
        .select(*ENTITY_COLUMNS, *ON_DEMAND_FEATURES)
        .sort("tx_datetime", "transaction_id")
    )


def check_against_offline_features(training_set: pl.DataFrame, transaction_features: pl.LazyFrame) -> pl.DataFrame:
    """The training set must equal the features stage's table row for row: no skew between Feast and the batch
    engine. Raises with the first differing feature otherwise; returns the training set unchanged."""
    _check_count(training_set.height, transaction_features)
    return check_chunk(training_set, transaction_features)


def check_chunk(chunk: pl.DataFrame, transaction_features: pl.LazyFrame) -> pl.DataFrame:
    """A time-ordered chunk of the training set (or all of it) must equal the features table's rows of the same
    transactions: the same transactions in the same order, every feature within TOLERANCE. Reads only the table's
    rows of the chunk's time range (its row groups are in time order). Returns the chunk unchanged."""
    first, last = chunk["tx_datetime"].min(), chunk["tx_datetime"].max()
    reference = (
        transaction_features.select("tx_datetime", "transaction_id", *FEATURES)
        .filter(pl.col("tx_datetime").is_between(first, last))
        .join(chunk.lazy().select("transaction_id"), on="transaction_id", how="semi")
        .collect()
        .sort("tx_datetime", "transaction_id")
    )
    if reference.height != chunk.height or not (reference["transaction_id"] == chunk["transaction_id"]).all():
        raise ValueError(
            f"training set has {chunk.height} rows from {first} to {last}, the features table {reference.height} of "
            "them: expected the same transactions in the same order"
        )
    for name in FEATURES:
        got, expected = chunk[name].to_numpy().astype(float), reference[name].to_numpy().astype(float)
        bad = ~np.isclose(got, expected, rtol=0, atol=TOLERANCE)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(
                f"feature {name} of transaction {chunk['transaction_id'][row]} is {got[row]} through Feast "
                f"but {expected[row]} in the features table ({int(bad.sum())} rows differ)"
            )
    return chunk


def _check_count(rows: int, transaction_features: pl.LazyFrame) -> None:
    expected = transaction_features.select(pl.len()).collect().item()
    if rows != expected:
        raise ValueError(
            f"training set has {rows} rows, the features table {expected}: "
            "expected the same transactions in the same order"
        )
