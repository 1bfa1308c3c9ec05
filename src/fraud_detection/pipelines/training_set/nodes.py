"""Nodes of the `training_set` stage: labelled transactions joined point-in-time through Feast's offline store."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from fraud_detection.feature_store.params import TrainingSetParams
from fraud_detection.features.definitions import FEATURES, ON_DEMAND_FEATURES

if TYPE_CHECKING:
    from feast import FeatureStore

ENTITY_COLUMNS = ("transaction_id", "customer_id", "terminal_id", "tx_datetime", "tx_amount", "tx_fraud")
TOLERANCE = 1e-9


def build_training_set(store: FeatureStore, transactions: pl.DataFrame, params: TrainingSetParams) -> pl.DataFrame:
    """One row per transaction: ids, time, label and the feature service's features, in transaction order."""
    entity_rows = transactions.select(*ENTITY_COLUMNS, pl.col("tx_datetime").alias("event_timestamp"))
    service = store.get_feature_service(params.feature_service)
    joined = store.get_historical_features(entity_df=entity_rows.to_pandas(), features=service).to_df()
    result = pl.from_pandas(joined[[*ENTITY_COLUMNS, *ON_DEMAND_FEATURES]])
    return (
        result.with_columns(pl.col("tx_datetime").dt.convert_time_zone("UTC").dt.cast_time_unit("us"))
        .select(*ENTITY_COLUMNS, *ON_DEMAND_FEATURES)
        .sort("tx_datetime", "transaction_id")
    )


def check_against_offline_features(training_set: pl.DataFrame, transaction_features: pl.LazyFrame) -> pl.DataFrame:
    """The training set must equal the features stage's table row for row: no skew between Feast and the batch
    engine. Raises with the first differing feature otherwise; returns the training set unchanged."""
    reference = transaction_features.collect().sort("tx_datetime", "transaction_id")
    if (
        reference.height != training_set.height
        or not (reference["transaction_id"] == training_set["transaction_id"]).all()
    ):
        raise ValueError(
            f"training set has {training_set.height} rows, the features table {reference.height}: "
            "expected the same transactions in the same order"
        )
    for name in FEATURES:
        got, expected = training_set[name].to_numpy().astype(float), reference[name].to_numpy().astype(float)
        bad = ~np.isclose(got, expected, rtol=0, atol=TOLERANCE)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(
                f"feature {name} of transaction {training_set['transaction_id'][row]} is {got[row]} through Feast "
                f"but {expected[row]} in the features table ({int(bad.sum())} rows differ)"
            )
    return training_set
