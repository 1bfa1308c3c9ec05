"""The proof of no training/serving skew: replaying transactions through the online path (online store via the
feature service + request data, then a push) gives every transaction exactly its offline training-set row, with
investigation labels in the label stream counting in the terminal risk as soon as they are known."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from fraud_detection.feature_store.dataset import apply_and_materialize
from fraud_detection.feature_store.online import OnlineFeatures, OnlineUpdaterSink, day_start
from fraud_detection.feature_store.params import TrainingSetParams
from fraud_detection.features import polars_engine
from fraud_detection.features.definitions import FEATURES, MICROS_PER_DAY, REQUEST_FIELDS
from fraud_detection.features.online import OnlineFeatureUpdater
from fraud_detection.pipelines.training_set.nodes import build_training_set
from tests.feature_store.conftest import LABEL_DELAY_DAYS
from tests.features.replay import replay

REPLAY_DAYS = 2
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _assert_same_features(got: pl.DataFrame, expected: pl.DataFrame) -> None:
    got, expected = got.sort("transaction_id"), expected.sort("transaction_id")
    assert got["transaction_id"].to_list() == expected["transaction_id"].to_list()
    for name in FEATURES:
        a, b = got[name].cast(pl.Float64).to_numpy(), expected[name].cast(pl.Float64).to_numpy()
        bad = np.flatnonzero(~np.isclose(a, b, rtol=0, atol=1e-9))
        assert bad.size == 0, (
            f"{name}: {bad.size} of {a.size} differ, e.g. transaction {got['transaction_id'][int(bad[0])]}"
        )


def test_feast_training_set_equals_the_batch_features(store, transactions, offline_features) -> None:
    apply_and_materialize(store, datetime(2018, 4, 2, tzinfo=UTC))
    training_set = build_training_set(
        store, transactions, TrainingSetParams(feature_service="fraud_model_v1", chunk_rows=100_000)
    )
    assert training_set.height == transactions.height
    _assert_same_features(training_set, offline_features)


def test_online_replay_matches_the_training_set(store, transactions, label_events, offline_features) -> None:
    """Materialize up to the start of the replay, then score and push the last days one transaction at a time,
    with the label events (delayed and early) applied as they become known."""
    last_day = transactions["tx_datetime"].dt.epoch("us").max() // MICROS_PER_DAY
    first_replayed = last_day - REPLAY_DAYS + 1
    apply_and_materialize(store, day_start(first_replayed))
    online = OnlineFeatures(store, "fraud_model_v1")
    sink = OnlineUpdaterSink(store)
    served: list[dict] = []

    def replayed(event: dict) -> bool:
        return event["tx_us"] // MICROS_PER_DAY >= first_replayed

    def score(event: dict) -> None:
        if replayed(event):
            moment = EPOCH + timedelta(microseconds=event["tx_us"])
            vector = online.vector(event["customer_id"], event["terminal_id"], moment, event["tx_amount"])
            served.append({"transaction_id": event["transaction_id"], **vector})

    def new_day(day: int, customer_rows: dict, terminal_rows: dict) -> None:
        if day > first_replayed:  # the first replayed day comes from materialization
            sink.new_day(day, customer_rows, terminal_rows)

    updater = OnlineFeatureUpdater(LABEL_DELAY_DAYS)
    replay(
        transactions,
        updater,
        on_new_day=new_day,
        on_transaction=score,
        after_transaction=lambda event, row: (
            sink.transaction(event["customer_id"], event["tx_us"], row) if replayed(event) else None
        ),
        on_terminal_row=lambda terminal, known_us, row: (  # a label that changed today's row
            sink.terminals({terminal: (known_us, row)}) if updater.day >= first_replayed else None
        ),
        label_events=label_events,
    )
    expected = offline_features.filter(pl.col("tx_datetime").dt.epoch("us") // MICROS_PER_DAY >= first_replayed)
    assert len(served) == expected.height > 500
    replayed_us = first_replayed * MICROS_PER_DAY
    early = label_events.filter(pl.col("known_at").dt.epoch("us") >= replayed_us - MICROS_PER_DAY)
    assert early.height > 50  # investigation labels came in during the replay ...
    delayed_only = polars_engine.state_tables(transactions, LABEL_DELAY_DAYS)
    without = polars_engine.transaction_features(transactions, delayed_only).filter(
        pl.col("tx_datetime").dt.epoch("us") >= replayed_us
    )
    assert (expected["terminal_risk_7d"] != without["terminal_risk_7d"]).sum() > 50  # ... and changed served risks
    _assert_same_features(pl.DataFrame(served), expected)


@pytest.mark.parametrize("customer_id, terminal_id", [(10**9, 10**9), (10**9, 1), (1, 10**9)])
def test_unknown_entities_get_the_documented_defaults(store, customer_id: int, terminal_id: int) -> None:
    apply_and_materialize(store, datetime(2018, 5, 1, tzinfo=UTC))
    vector = OnlineFeatures(store, "fraud_model_v1").vector(
        customer_id, terminal_id, datetime(2018, 5, 1, 3, tzinfo=UTC), 42.0
    )
    assert vector["tx_amount"] == 42.0 and vector["tx_during_night"] == 1
    if customer_id == 10**9:
        assert vector["customer_nb_tx_30d"] == 0 and vector["customer_avg_amount_7d"] == 0.0
        assert vector["tx_amount_over_customer_avg_7d"] == 0.0
    if terminal_id == 10**9:
        assert vector["terminal_nb_tx_30d"] == 0 and vector["terminal_risk_30d"] == 0.0


@pytest.mark.parametrize("hours_after", [1, 13, 30, 80])  # within the day, later that day, next day, days later
def test_direct_online_read_equals_feasts_get_online_features(store, hours_after: int) -> None:
    """`vector` (direct reads of the service's views) and Feast's generic path give the same vectors, for known
    and unknown entities, fresh and stale (older than the views' TTL) values."""
    end = datetime(2018, 5, 1, tzinfo=UTC)
    apply_and_materialize(store, end)
    online = OnlineFeatures(store, "fraud_model_v1")
    moment = end + timedelta(hours=hours_after)
    for customer_id, terminal_id in [(c, (7 * c) % 650) for c in range(0, 320, 3)]:
        fast = online.vector(customer_id, terminal_id, moment, 25.0)
        assert fast == _vector_via_feast(store, customer_id, terminal_id, moment, 25.0), (customer_id, terminal_id)


def _vector_via_feast(store, customer_id: int, terminal_id: int, moment: datetime, amount: float) -> dict:
    """The model's features through Feast's generic `get_online_features` of the feature service (the reference)."""
    row = {"customer_id": customer_id, "terminal_id": terminal_id, "tx_datetime": moment, "tx_amount": amount}
    service = store.get_feature_service("fraud_model_v1")
    response = store.get_online_features(features=service, entity_rows=[row]).to_dict()
    return {name: row[name] if name in REQUEST_FIELDS else response[name][0] for name in FEATURES}
