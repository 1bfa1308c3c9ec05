"""Nodes of the `training_set` stage: labelled transactions joined point-in-time through Feast's offline store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from fraud_detection.feature_store.params import TrainingSetParams
from fraud_detection.features.definitions import FEATURES, ON_DEMAND_FEATURES

if TYPE_CHECKING:
    from feast import FeatureService, FeatureStore

ENTITY_COLUMNS = ("transaction_id", "customer_id", "terminal_id", "tx_datetime", "tx_amount", "tx_fraud")
TOLERANCE = 1e-9


def build_training_set(store: FeatureStore, transactions: pl.DataFrame, params: TrainingSetParams) -> pl.DataFrame:
    """One row per transaction: ids, time, label and the feature service's features, in transaction order.

    Retrieved in time-ordered chunks of at most `params.chunk_rows` entity rows, each turned into polars at once:
    Feast's point-in-time join and its pandas frames then grow with the chunk, not with the data. Each chunk's rows
    are gathered by the sort order (no sorted copy of the transactions), and the chunks are kept as the result's
    chunks (no copy into one buffer): the stage holds the transactions, one retrieval and the training set."""
    entity_rows = transactions.select(*ENTITY_COLUMNS, pl.col("tx_datetime").alias("event_timestamp"))
    order = entity_rows.select(pl.arg_sort_by("tx_datetime", "transaction_id")).to_series()
    service = store.get_feature_service(params.feature_service)
    chunks = [
        _retrieve(store, service, entity_rows.gather(order.slice(start, params.chunk_rows)))
        for start in range(0, entity_rows.height, params.chunk_rows)
    ]
    return pl.concat(chunks, how="vertical", rechunk=False) if chunks else _retrieve(store, service, entity_rows)


def _retrieve(store: FeatureStore, service: FeatureService, entity_rows: pl.DataFrame) -> pl.DataFrame:
    """Feast's point-in-time join of `entity_rows` with the feature service, in transaction order."""
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
    engine. Raises with the first differing feature otherwise; returns the training set unchanged. The table is read
    one column at a time, so the check holds one column of it in memory, not the whole table."""
    keys = transaction_features.select("tx_datetime", "transaction_id").collect().with_row_index("position")
    order = keys.sort("tx_datetime", "transaction_id")["position"]
    if (
        keys.height != training_set.height
        or not (keys["transaction_id"].gather(order) == training_set["transaction_id"]).all()
    ):
        raise ValueError(
            f"training set has {training_set.height} rows, the features table {keys.height}: "
            "expected the same transactions in the same order"
        )
    for name in FEATURES:
        reference = transaction_features.select(name).collect().to_series().gather(order)
        got, expected = training_set[name].to_numpy().astype(float), reference.to_numpy().astype(float)
        bad = ~np.isclose(got, expected, rtol=0, atol=TOLERANCE)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(
                f"feature {name} of transaction {training_set['transaction_id'][row]} is {got[row]} through Feast "
                f"but {expected[row]} in the features table ({int(bad.sum())} rows differ)"
            )
    return training_set
