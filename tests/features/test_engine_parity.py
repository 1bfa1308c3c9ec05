"""The three feature engines (polars batch, online updater, Spark) give the same state and features, with labels
known early (investigations) in the label events, and the polars engine gives hand-computed values on a tiny frame,
so the definition itself is pinned too."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pyspark.sql import SparkSession

from fraud_detection.features import polars_engine, spark_engine
from fraud_detection.features.definitions import (
    FEATURES,
    MICROS_PER_DAY,
    NO_FRAUD_DAYS,
    STATE_COLUMNS,
    TERMINAL_RUN,
    transaction_features,
)
from fraud_detection.features.online import OnlineFeatureUpdater
from fraud_detection.features.polars_engine import StateTables
from fraud_detection.feedback.labels import events_frame, label_event
from fraud_detection.simulation.params import SimulateParams
from fraud_detection.simulation.simulator import SimulationConfig, simulate_transactions
from tests.conftest import changed
from tests.features.replay import Event, investigation_labels, replay

LABEL_DELAY_DAYS = 7
TOLERANCE = {"rel_tol": 1e-9, "abs_tol": 1e-9}
# (tx_datetime, customer_id, terminal_id, tx_amount, tx_fraud): edge cases appended to the simulated data,
# numbered by their position (they get consecutive ids after the simulated ones).
EDGE_CASES = (
    (datetime(2018, 5, 10, 10, 0, 0, tzinfo=UTC), 7, 11, 25.0, 0),  # 0-2: three at the very same second ...
    (datetime(2018, 5, 10, 10, 0, 0, tzinfo=UTC), 7, 12, 35.0, 0),
    (datetime(2018, 5, 10, 10, 0, 0, tzinfo=UTC), 7, 13, 40.0, 0),
    (datetime(2018, 5, 10, 10, 0, 1, tzinfo=UTC), 7, 11, 45.0, 0),  # 3: ... and one right after them
    (datetime(2018, 4, 1, 0, 0, 0, tzinfo=UTC), 8, 13, 15.0, 0),  # 4: midnight of the first day
    (datetime(2018, 5, 10, 23, 59, 59, tzinfo=UTC), 8, 13, 55.0, 0),  # 5: last second of a day ...
    (datetime(2018, 5, 11, 0, 0, 0, tzinfo=UTC), 8, 13, 65.0, 0),  # 6: ... and the midnight after it
    (datetime(2018, 5, 12, 12, 0, 0, tzinfo=UTC), 10_000, 20_000, 75.0, 0),  # 7: customer and terminal seen once
    (datetime(2018, 5, 1, 23, 59, 59, tzinfo=UTC), 9, 20_001, 500.0, 1),  # 8: a fraud at a new terminal, whose
    (datetime(2018, 5, 8, 23, 59, 58, tzinfo=UTC), 9, 20_001, 20.0, 0),  # 9: label is not known a second before
    (datetime(2018, 5, 8, 23, 59, 59, tzinfo=UTC), 9, 20_001, 30.0, 0),  # 10: the delay is over, and is at it ...
    (datetime(2018, 5, 9, 23, 59, 59, tzinfo=UTC), 9, 20_001, 35.0, 0),  # 11: ... and leaves the 1-day window
)


def _frame(rows: list[tuple], first_id: int) -> pl.DataFrame:
    """Transactions in the simulator's schema from (tx_datetime, customer, terminal, amount, fraud) rows."""
    tx_datetime, customer_id, terminal_id, tx_amount, tx_fraud = zip(*rows, strict=True)
    return pl.DataFrame(
        {
            "transaction_id": range(first_id, first_id + len(rows)),
            "tx_datetime": tx_datetime,
            "customer_id": customer_id,
            "terminal_id": terminal_id,
            "tx_amount": tx_amount,
            "tx_fraud": tx_fraud,
            "tx_fraud_scenario": tx_fraud,
        },
        schema_overrides={"tx_datetime": polars_engine.UTC_MICROS, "tx_fraud": pl.Int8, "tx_fraud_scenario": pl.Int8},
    )


@pytest.fixture(scope="module")
def transactions(small_simulate_params: SimulateParams) -> pl.DataFrame:
    """60 days from 2018-04-01 (the edge cases fall inside them) of 300 customers and 600 terminals."""
    size = {"n_customers": 300, "n_terminals": 600, "n_days": 60}
    simulate = changed(small_simulate_params, profiles={"small": size}, start_date="2018-04-01", seed=1)
    simulated = simulate_transactions(SimulationConfig.from_params(simulate))
    edges = _frame(list(EDGE_CASES), first_id=simulated["transaction_id"].max() + 1)
    return pl.concat([simulated, edges.select(simulated.columns).cast(simulated.schema)]).sort(
        "tx_datetime", "transaction_id"
    )


@pytest.fixture(scope="module")
def label_events(transactions: pl.DataFrame) -> pl.DataFrame:
    return investigation_labels(transactions)


@pytest.fixture(scope="module")
def tables(transactions: pl.DataFrame, label_events: pl.DataFrame) -> StateTables:
    return polars_engine.state_tables(transactions, LABEL_DELAY_DAYS, label_events)


@pytest.fixture(scope="module")
def features(transactions: pl.DataFrame, tables: StateTables) -> pl.DataFrame:
    return polars_engine.transaction_features(transactions, tables)


def test_polars_features_keep_the_transaction_order(transactions: pl.DataFrame, features: pl.DataFrame) -> None:
    assert features["transaction_id"].to_list() == transactions["transaction_id"].to_list()


def test_edge_cases_on_the_polars_engine(transactions: pl.DataFrame, features: pl.DataFrame) -> None:
    first_id = transactions["transaction_id"].max() - len(EDGE_CASES) + 1
    edges = features.filter(pl.col("transaction_id") >= first_id).iter_rows(named=True)
    edge = {row["transaction_id"] - first_id: row for row in edges}
    same_second = {edge[i]["customer_nb_tx_1d"] for i in range(3)}
    assert len(same_second) == 1  # none sees the others
    assert edge[3]["customer_nb_tx_1d"] == same_second.pop() + 3
    assert (edge[7]["customer_nb_tx_30d"], edge[7]["terminal_nb_tx_30d"]) == (0, 0)
    assert edge[9]["terminal_nb_tx_30d"] == 0  # the fraud is inside the label delay
    assert (edge[10]["terminal_nb_tx_1d"], edge[10]["terminal_risk_1d"]) == (1, 1.0)  # (t - 8 d, t - 7 d]
    assert (edge[11]["terminal_nb_tx_1d"], edge[11]["terminal_nb_tx_7d"], edge[11]["terminal_risk_7d"]) == (0, 1, 1.0)


def test_the_label_events_change_the_terminal_risk(
    transactions: pl.DataFrame, label_events: pl.DataFrame, features: pl.DataFrame
) -> None:
    """Enough early labels to matter: many terminal risks differ from those of labels known after the delay only,
    and never a transaction count."""
    assert label_events.height > 1000
    without = polars_engine.transaction_features(
        transactions, polars_engine.state_tables(transactions, LABEL_DELAY_DAYS)
    )
    changed_risk = (features["terminal_risk_7d"] != without["terminal_risk_7d"]).sum()
    assert changed_risk > 0.05 * transactions.height
    assert features["terminal_nb_tx_7d"].to_list() == without["terminal_nb_tx_7d"].to_list()


def _online_features(transactions: pl.DataFrame, label_events: pl.DataFrame) -> pl.DataFrame:
    """Each transaction's features from the online updater, read just before the transaction is added."""
    updater = OnlineFeatureUpdater(label_delay_days=LABEL_DELAY_DAYS)
    rows: list[dict] = []

    def score(event: Event) -> None:
        request = (event["customer_id"], event["terminal_id"], event["tx_us"], event["tx_amount"])
        rows.append({"transaction_id": event["transaction_id"], **updater.features(*request)})

    replay(transactions, updater, on_transaction=score, label_events=label_events)
    return pl.DataFrame(rows)


def test_online_updater_matches_polars(
    transactions: pl.DataFrame, label_events: pl.DataFrame, features: pl.DataFrame
) -> None:
    online = _online_features(transactions, label_events).sort("transaction_id")
    expected = features.select("transaction_id", *FEATURES).sort("transaction_id")
    assert_frame_equal(online, expected, **TOLERANCE)


@pytest.mark.spark
def test_spark_state_tables_match_polars(
    spark: SparkSession, transactions: pl.DataFrame, label_events: pl.DataFrame, tables: StateTables
) -> None:
    spark_tables = spark_engine.state_tables(spark, transactions, LABEL_DELAY_DAYS, label_events)
    for spark_table, table in zip(spark_tables, tables, strict=True):
        assert_frame_equal(spark_table, table, **TOLERANCE)


@pytest.mark.spark
def test_spark_features_match_polars(
    spark: SparkSession, transactions: pl.DataFrame, tables: StateTables, features: pl.DataFrame
) -> None:
    assert_frame_equal(spark_engine.transaction_features(spark, transactions, tables), features, **TOLERANCE)


@pytest.mark.spark
def test_spark_features_from_a_spark_frame_and_spark_tables(
    spark: SparkSession, transactions: pl.DataFrame, label_events: pl.DataFrame, features: pl.DataFrame
) -> None:
    frame = spark.createDataFrame(transactions.to_arrow())  # a local relation keeps the row order
    result = spark_engine.transaction_features(
        spark, frame, label_delay_days=LABEL_DELAY_DAYS, label_events=label_events
    )
    assert_frame_equal(result, features, **TOLERANCE)


@pytest.mark.spark
def test_spark_features_need_tables_or_a_label_delay(spark: SparkSession, transactions: pl.DataFrame) -> None:
    with pytest.raises(ValueError, match="label_delay_days"):
        spark_engine.transaction_features(spark, transactions)


# A tiny frame whose features are computed by hand, with a label delay of 2 days. 2018-04-01 is a Sunday.
TINY_DELAY_DAYS = 2
TINY = (
    (datetime(2018, 4, 1, 10, 0, 0, tzinfo=UTC), 1, 100, 10.0, 1),  # id 1
    (datetime(2018, 4, 2, 9, 0, 0, tzinfo=UTC), 1, 100, 20.0, 0),  # id 2 \ at the same instant
    (datetime(2018, 4, 2, 9, 0, 0, tzinfo=UTC), 1, 101, 30.0, 0),  # id 3 /
    (datetime(2018, 4, 2, 12, 0, 0, tzinfo=UTC), 1, 100, 40.0, 0),  # id 4
    (datetime(2018, 4, 3, 23, 59, 59, tzinfo=UTC), 2, 100, 60.0, 0),  # id 5: terminal up to 04-01 23:59:59
    (datetime(2018, 4, 4, 0, 0, 0, tzinfo=UTC), 2, 100, 50.0, 0),  # id 6: terminal in (03-31 00:00, 04-02 00:00]
    (datetime(2018, 4, 3, 9, 59, 59, tzinfo=UTC), 3, 100, 70.0, 0),  # id 7: up to 04-01 09:59:59, before id 1
)
HOUR_DAYS = 1 / 24
TINY_STD_4 = (200 / 3) ** 0.5  # id 4's 7 days: 10, 20 and 30
TINY_EXPECTED = {  # transaction_id -> hand-computed features
    1: {"customer_nb_tx_1d": 0, "customer_avg_amount_1d": 0.0, "tx_amount_over_customer_avg_1d": 0.0},
    2: {"customer_nb_tx_1d": 1, "customer_avg_amount_1d": 10.0, "tx_amount_over_customer_avg_1d": 2.0,
        "customer_std_amount_1d": 0.0, "tx_amount_zscore_customer_1d": 0.0},
    3: {"customer_nb_tx_1d": 1, "customer_avg_amount_1d": 10.0, "tx_amount_over_customer_avg_1d": 3.0},
    4: {"customer_nb_tx_1d": 3, "customer_avg_amount_7d": 20.0, "tx_amount_over_customer_avg_30d": 2.0,
        "customer_std_amount_7d": TINY_STD_4, "tx_amount_zscore_customer_7d": 20 / TINY_STD_4},
    # terminal 100's fraud run: id 1 (a fraud, 04-01 10:00) once its day is D - delay (lag 0) or before it
    5: {"customer_nb_tx_7d": 0, "terminal_nb_tx_30d": 1, "terminal_risk_30d": 1.0, "tx_during_night": 0,
        "terminal_fraud_run_length": 1, "terminal_fraud_run_days": 14 * HOUR_DAYS - 1 / 86_400},
    7: {"terminal_nb_tx_30d": 0, "terminal_risk_30d": 0.0, "terminal_fraud_run_length": 0,
        "terminal_fraud_run_days": NO_FRAUD_DAYS, "terminal_days_since_fraud": NO_FRAUD_DAYS},  # before id 1's time
    6: {"customer_avg_amount_1d": 60.0, "terminal_nb_tx_1d": 1, "terminal_risk_7d": 1.0, "tx_during_night": 1,
        "terminal_fraud_run_length": 1, "terminal_days_since_fraud": 14 * HOUR_DAYS},
}  # fmt: skip


# Label events on the tiny frame: id 1's fraud known 2 hours after it, id 4's genuine label at the next midnight.
TINY_LABELS = ((1, 1, datetime(2018, 4, 1, 12, 0, 0, tzinfo=UTC)), (4, 0, datetime(2018, 4, 3, 0, 0, 0, tzinfo=UTC)))
TINY_EXPECTED_WITH_LABELS = {  # the terminal features that the early labels change (or not)
    2: {"terminal_nb_tx_1d": 0, "terminal_risk_1d": 1.0},  # id 1 in (t - 2 d, t] and known: 1 fraud of 1 label
    4: {"terminal_nb_tx_1d": 0, "terminal_risk_30d": 1.0},  # its own label is not known yet
    7: {"terminal_nb_tx_30d": 0, "terminal_risk_30d": 0.5},  # ids 1 and 4 known early: 1 fraud of 2 labels
    5: {"terminal_nb_tx_30d": 1, "terminal_risk_30d": 0.5},  # id 1 in the window now, id 4 still early
    6: {"terminal_nb_tx_1d": 1, "terminal_risk_1d": 0.5},
    3: {"terminal_nb_tx_30d": 0, "terminal_risk_30d": 0.0},  # another terminal
}


def _tiny_labels() -> pl.DataFrame:
    return events_frame(label_event(i, fraud, known_at, "investigation") for i, fraud, known_at in TINY_LABELS)


def _tiny_features(tables_from: pl.DataFrame | None = None, labels: pl.DataFrame | None = None) -> dict[int, dict]:
    tiny = _frame(list(TINY), first_id=1)
    tables = polars_engine.state_tables(tiny if tables_from is None else tables_from, TINY_DELAY_DAYS, labels)
    result = polars_engine.transaction_features(tiny, tables)
    return {row["transaction_id"]: row for row in result.iter_rows(named=True)}


def test_hand_computed_features() -> None:
    features = _tiny_features()
    for transaction_id, expected in TINY_EXPECTED.items():
        assert {name: features[transaction_id][name] for name in expected} == pytest.approx(expected), transaction_id
    assert [features[i]["tx_during_weekend"] for i in (1, 2)] == [1, 0]
    assert features[6]["tx_amount_over_customer_avg_1d"] == pytest.approx(50.0 / 60.0)


def test_hand_computed_features_with_early_labels() -> None:
    features = _tiny_features(labels=_tiny_labels())
    for transaction_id, expected in TINY_EXPECTED_WITH_LABELS.items():
        assert {name: features[transaction_id][name] for name in expected} == pytest.approx(expected), transaction_id


def test_hand_computed_early_label_state() -> None:
    """Terminal 100 on 04-03: ids 1 and 4 count from midnight; id 1 stops at 10:00, when it enters the window."""
    tables = polars_engine.state_tables(_frame(list(TINY), first_id=1), TINY_DELAY_DAYS, _tiny_labels())
    row = tables.terminal_daily.filter(terminal_id=100, event_timestamp=datetime(2018, 4, 3, tzinfo=UTC))
    assert row["terminal_early_labels_from"].to_list() == [[0.0, 0.0, 0.0, 1.0]]
    assert row["terminal_early_labels_until"].to_list() == [[10 * 3_600_000_000.0, 1.0]]
    before = tables.terminal_daily.filter(terminal_id=100, event_timestamp=datetime(2018, 4, 1, tzinfo=UTC))
    assert before["terminal_early_labels_from"].to_list() == [[12 * 3_600_000_000.0, 1.0]]


def test_hand_computed_state() -> None:
    tables = polars_engine.state_tables(_frame(list(TINY), first_id=1), TINY_DELAY_DAYS)
    daily = tables.customer_daily.filter(customer_id=1, event_timestamp=datetime(2018, 4, 3, tzinfo=UTC))
    assert daily.select("customer_nb_tx_prev_1d", "customer_amount_prev_7d").row(0) == (3, 100.0)
    intraday = tables.customer_intraday.filter(customer_id=1, event_timestamp=TINY[1][0])
    counts = intraday.select(
        "customer_today_nb_tx_before",
        "customer_today_amount_before",
        "customer_today_amount_sq_before",
        "customer_today_nb_tx_at",
        "customer_today_amount_at",
        "customer_today_amount_sq_at",
    )
    assert counts.row(0) == (0, 0.0, 0.0, 2, 50.0, 1300.0)
    assert daily["customer_amount_sq_prev_7d"].item() == 100.0 + 400.0 + 900.0 + 1600.0
    run = tables.terminal_daily.filter(terminal_id=100, event_timestamp=datetime(2018, 4, 4, tzinfo=UTC))
    fourteen_hours = 14 * MICROS_PER_DAY // 24  # id 1, a fraud at 04-01 10:00, before 04-02 (D - delay)
    assert run.select(TERMINAL_RUN).row(0) == (1, fourteen_hours, fourteen_hours)


def test_unknown_entities_count_as_no_transactions() -> None:
    without_customer_2_and_terminal_101 = _frame([TINY[i] for i in (0, 1, 3)], first_id=1)
    features = _tiny_features(tables_from=without_customer_2_and_terminal_101)
    assert (features[5]["customer_nb_tx_30d"], features[5]["customer_avg_amount_30d"]) == (0, 0.0)
    assert (features[3]["terminal_nb_tx_30d"], features[3]["terminal_risk_30d"]) == (0, 0.0)
    no_state = transaction_features({name: [None] for name in STATE_COLUMNS}, [0], [12.5])
    ages = ("terminal_fraud_run_days", "terminal_days_since_fraud")
    history = [name for name in FEATURES if name.startswith(("customer_", "terminal_", "tx_amount_over_",
                                                             "tx_amount_zscore_")) and name not in ages]  # fmt: skip
    assert [no_state[name][0] for name in history] == [0] * len(history)
    assert [no_state[name][0] for name in ages] == [NO_FRAUD_DAYS] * len(ages), "no fraud: beyond any age"
