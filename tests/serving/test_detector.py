"""The request path in-process, on a real Feast store (SQLite online) and a trained model: the features served
(one at a time and in batches) equal the training set's, each transaction's state reaches the store so the next one
sees it, and faults degrade (defaults, rules) instead of failing."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest
from tests.conftest import changed
from tests.feature_store.conftest import open_store

from fraud_detection.feature_store import dataset
from fraud_detection.feature_store.dataset import apply_and_materialize
from fraud_detection.feature_store.online import OnlineFeatures, OnlineStoreUnavailable, day_start
from fraud_detection.features.definitions import FEATURES, MICROS_PER_DAY
from fraud_detection.pipelines.train.nodes import train_candidate
from fraud_detection.serving.decision import FallbackRules
from fraud_detection.serving.detector import RULES_VERSION, FraudDetector, ServedModel
from fraud_detection.serving.online_state import StoreFeatures
from fraud_detection.serving.params import ABParams, Thresholds
from fraud_detection.serving.prediction_log import JsonLinesSink, PredictionLog, read_json_lines
from fraud_detection.serving.routing import ABRouter
from fraud_detection.serving.schemas import Transaction

THRESHOLDS = Thresholds(review=0.3, decline=0.7)
RULES = FallbackRules(amount_threshold=220, terminal_risk=0.5, amount_ratio=3)


@pytest.fixture(scope="module")
def model(small_training_set: pl.DataFrame, small_train_params) -> ServedModel:
    params = changed(small_train_params, max_epochs=2)
    candidate = train_candidate(small_training_set, params, 7, "v1")
    return ServedModel("1", candidate.scorer.predict_proba)


@pytest.fixture
def last_day(transactions: pl.DataFrame) -> int:
    return transactions["tx_datetime"].dt.epoch("us").max() // MICROS_PER_DAY


@pytest.fixture
def store(feature_root, monkeypatch: pytest.MonkeyPatch, last_day: int):
    """Materialized up to the start of the last simulated day: that day is served one transaction at a time."""
    monkeypatch.chdir(feature_root)
    opened = open_store(feature_root, "sqlite")
    apply_and_materialize(opened, day_start(last_day))
    return opened


def _detector(store, models: dict[str, ServedModel], tmp_path, variants: dict | None = None) -> FraudDetector:
    router = ABRouter.from_params(ABParams(salt="t", variants=variants or {"champion": 1.0}))
    log = PredictionLog(JsonLinesSink(tmp_path / "log"))
    features = StoreFeatures(store, dataset.open_store(store.config), "fraud_model_v1")
    return FraudDetector(models, features, router, THRESHOLDS, RULES, log)


def _requests(transactions: pl.DataFrame, day: int) -> list[Transaction]:
    rows = transactions.filter(pl.col("tx_datetime").dt.epoch("us") // MICROS_PER_DAY == day).sort("tx_datetime")
    return [Transaction.model_validate(row) for row in rows.select(
        "transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_amount").iter_rows(named=True)]  # fmt: skip


def test_served_features_equal_the_training_set_and_each_transaction_is_pushed(
    store, model, transactions, offline_features, last_day, tmp_path
) -> None:
    detector = _detector(store, {"champion": model}, tmp_path)
    requests = _requests(transactions, last_day)
    predictions = [detector.predict(r) for r in requests]
    detector.log.close()
    served = {r["transaction_id"]: r["features"] for r in read_json_lines(tmp_path / "log")}
    assert len(served) == len(requests) > 50
    expected = offline_features.filter(pl.col("transaction_id").is_in(list(served)))
    for row in expected.iter_rows(named=True):
        got = served[row["transaction_id"]]
        bad = [n for n in FEATURES if not np.isclose(float(got[n]), float(row[n]), rtol=0, atol=1e-9)]
        assert not bad, f"transaction {row['transaction_id']}: {bad} differ from the training set"
    assert all(p.model_version == "1" and p.variant == "champion" for p in predictions)
    matrix = expected.sort("transaction_id").select(FEATURES).to_numpy().astype(np.float64)
    by_id = {p.transaction_id: p.fraud_probability for p in predictions}
    assert np.allclose([by_id[i] for i in sorted(by_id)], model.predict(matrix)), "scored as the model scores offline"


def test_an_unknown_customer_is_scored_with_defaults_and_flagged(store, model, tmp_path) -> None:
    detector = _detector(store, {"champion": model}, tmp_path)
    request = Transaction(transaction_id=1, tx_datetime=datetime(2018, 5, 15, 12, tzinfo=UTC), customer_id=10**9,
                          terminal_id=10**9, tx_amount=30.0)  # fmt: skip
    prediction = detector.predict(request)
    assert prediction.degraded and prediction.model_version == "1"
    assert prediction.reasons == ["unknown customer; no customer history", "unknown terminal; no terminal history"]
    again = detector.predict(request.model_copy(update={"transaction_id": 2}))
    assert again.reasons[0] == "unknown customer; no customer history", "daily history is still unknown"
    detector.log.close()
    [first, second] = list(read_json_lines(tmp_path / "log"))
    assert second["features"]["customer_avg_amount_1d"] == first["features"]["customer_avg_amount_1d"] == 0


def test_an_online_store_that_is_gone_degrades_to_defaults(store, model, feature_root, tmp_path) -> None:
    detector = _detector(store, {"champion": model}, tmp_path)
    online = feature_root / store.config.online_store.path
    online.rename(online.with_suffix(".moved"))
    try:
        prediction = detector.predict(Transaction(transaction_id=1, tx_datetime=datetime(2018, 5, 15, tzinfo=UTC),
                                                  customer_id=1, terminal_id=1, tx_amount=30.0))  # fmt: skip
    finally:
        online.with_suffix(".moved").rename(online)
    assert prediction.degraded and prediction.reasons[0].startswith("online store unavailable; features defaulted")
    assert prediction.model_version == "1" and 0 <= prediction.fraud_probability <= 1
    assert detector.counters.degraded["online store unavailable"] == 1


def test_the_rules_are_a_floor_where_the_features_were_defaulted(store, feature_root, tmp_path) -> None:
    """A model that sees no history scores a large amount low (a card's first transaction is rare in training):
    where the features were defaulted, a transaction a rule flags gets at least the rule's score."""
    lenient = ServedModel("1", lambda matrix: np.full(len(matrix), 0.001))
    detector = _detector(store, {"champion": lenient}, tmp_path)
    detector.swap({"champion": lenient}, ServedModel("2", lambda matrix: np.full(len(matrix), 0.002)))  # a shadow
    moment = datetime(2018, 5, 15, 12, tzinfo=UTC)
    new_card = detector.predict(Transaction(transaction_id=1, tx_datetime=moment, customer_id=10**9, terminal_id=1,
                                            tx_amount=500.0))  # fmt: skip
    assert (new_card.fraud_probability, new_card.decision, new_card.model_version) == (0.9, "decline", "1")
    assert new_card.reasons[0] == "unknown customer; no customer history"
    assert new_card.reasons[-1] == "rule floor; features defaulted: the rules' 0.9 over the model's 0.001"
    small = detector.predict(Transaction(transaction_id=2, tx_datetime=moment, customer_id=10**9 + 1,
                                         terminal_id=1, tx_amount=30.0))  # fmt: skip
    assert (small.fraud_probability, small.decision) == (0.001, "approve"), "no rule flags it: the model's score"
    known = detector.predict(Transaction(transaction_id=3, tx_datetime=moment, customer_id=1, terminal_id=1,
                                         tx_amount=500.0))  # fmt: skip
    assert (known.fraud_probability, known.degraded) == (0.001, False), "real features: the model decides alone"
    online = feature_root / store.config.online_store.path
    online.rename(online.with_suffix(".moved"))
    try:
        [outage] = detector.predict_batch([Transaction(transaction_id=4, tx_datetime=moment, customer_id=1,
                                                       terminal_id=1, tx_amount=500.0)])  # fmt: skip
    finally:
        online.with_suffix(".moved").rename(online)
    assert outage.reasons[0].startswith("online store unavailable") and outage.decision == "decline"
    assert detector.counters.degraded["rule floor"] == 2
    detector.close()
    shadow = {r["transaction_id"]: r["fraud_probability"] for r in read_json_lines(tmp_path / "log")
              if r["role"] == "shadow"}  # fmt: skip
    assert shadow == {1: 0.9, 2: 0.002, 3: 0.002, 4: 0.9}, "the shadow is floored like the served model"
    assert detector.counters.shadow_disagreements == 0


def test_a_model_that_fails_is_replaced_by_the_rules(store, tmp_path) -> None:
    def broken(matrix: np.ndarray) -> np.ndarray:
        raise RuntimeError("weights corrupted")

    detector = _detector(store, {"champion": ServedModel("3", broken)}, tmp_path)
    prediction = detector.predict(Transaction(transaction_id=1, tx_datetime=datetime(2018, 5, 15, tzinfo=UTC),
                                              customer_id=1, terminal_id=1, tx_amount=500.0))  # fmt: skip
    assert (prediction.model_version, prediction.fraud_probability, prediction.decision) == (RULES_VERSION, 0.9,
                                                                                             "decline")  # fmt: skip
    assert prediction.degraded and "model 3 failed to score; rule fallback" in prediction.reasons
    assert detector.counters.fallbacks == 1


def test_each_customer_is_served_by_its_variant_model(store, model, tmp_path) -> None:
    other = ServedModel("2", lambda matrix: np.full(len(matrix), 0.5))
    detector = _detector(store, {"champion": model, "challenger": other}, tmp_path,
                         {"champion": 0.5, "challenger": 0.5})  # fmt: skip
    for customer in range(40):
        moment = datetime(2018, 5, 15, tzinfo=UTC)
        prediction = detector.predict(Transaction(transaction_id=customer, tx_datetime=moment, customer_id=customer,
                                                  terminal_id=1, tx_amount=10.0))  # fmt: skip
        assert prediction.variant == detector.router.variant(customer)
        assert prediction.model_version == {"champion": "1", "challenger": "2"}[prediction.variant]
    assert set(detector.counters.requests) == {"champion", "challenger"}
    with pytest.raises(ValueError, match=r"variants \['other'\] without a model"):
        _detector(store, {"champion": model}, tmp_path, {"champion": 0.5, "other": 0.5})


def test_the_shadow_is_scored_and_logged_off_the_request_path(store, model, tmp_path) -> None:
    release = threading.Event()

    def slow_then_opposite(matrix: np.ndarray) -> np.ndarray:
        release.wait(10)
        return 1 - model.predict(matrix)

    detector = _detector(store, {"champion": model}, tmp_path)
    detector.swap({"champion": model}, ServedModel("9", slow_then_opposite))
    request = Transaction(transaction_id=1, tx_datetime=datetime(2018, 5, 15, tzinfo=UTC), customer_id=1,
                          terminal_id=1, tx_amount=30.0)  # fmt: skip
    start = time.perf_counter()
    served = detector.predict(request)
    assert time.perf_counter() - start < 1, "the response does not wait for the shadow"
    assert served.model_version == "1" and served.variant == "champion"
    release.set()
    detector.close()
    records = list(read_json_lines(tmp_path / "log"))
    assert [(r["role"], r["model_version"]) for r in records] == [("served", "1"), ("shadow", "9")]
    assert records[1]["fraud_probability"] == pytest.approx(1 - served.fraud_probability)
    assert detector.counters.shadow_scored == 1 and detector.counters.shadow_disagreements == 1


def test_a_failing_shadow_never_touches_the_response(store, model, tmp_path) -> None:
    def broken(matrix: np.ndarray) -> np.ndarray:
        raise RuntimeError("shadow broke")

    detector = _detector(store, {"champion": model}, tmp_path)
    detector.swap({"champion": model}, ServedModel("9", broken))
    served = detector.predict(Transaction(transaction_id=1, tx_datetime=datetime(2018, 5, 15, tzinfo=UTC),
                                          customer_id=1, terminal_id=1, tx_amount=30.0))  # fmt: skip
    detector.close()
    assert served.model_version == "1" and detector.counters.shadow_failures == 1
    assert [r["role"] for r in read_json_lines(tmp_path / "log")] == ["served"]


def test_a_swap_serves_the_new_model_from_the_next_request(store, model, tmp_path) -> None:
    detector = _detector(store, {"champion": model}, tmp_path)
    request = Transaction(transaction_id=1, tx_datetime=datetime(2018, 5, 15, tzinfo=UTC), customer_id=1,
                          terminal_id=1, tx_amount=30.0)  # fmt: skip
    assert detector.predict(request).model_version == "1"
    detector.swap({"champion": ServedModel("2", model.predict)}, None)
    assert detector.predict(request).model_version == "2" and detector.versions() == {"champion": "2"}
    with pytest.raises(ValueError, match="without a model"):
        detector.swap({"other": model}, None)
    assert detector.versions() == {"champion": "2"}, "a refused swap keeps the models"
    detector.close()


def test_batches_score_as_one_at_a_time_and_equal_the_training_set(
    store, model, transactions, offline_features, last_day, feature_root, tmp_path
) -> None:
    """The vectorised batch path (one read per view, in-batch order per customer, one model call) gives the very
    features and scores of the one-at-a-time path, in the request's order."""
    requests = _requests(transactions, last_day)
    single = _detector(store, {"champion": model}, tmp_path / "single")
    one_by_one = [single.predict(r) for r in requests]
    single.close()
    twin = open_store(feature_root, "sqlite")
    apply_and_materialize(twin, day_start(last_day))
    batched = _detector(twin, {"champion": model}, tmp_path / "batched")
    answers, rng = [], np.random.default_rng(0)
    for chunk in np.array_split(np.arange(len(requests)), 7):  # batches of ~40, each sent shuffled
        shuffled = rng.permutation(chunk)
        got = batched.predict_batch([requests[i] for i in shuffled])
        assert [p.transaction_id for p in got] == [requests[i].transaction_id for i in shuffled], "request order"
        answers += sorted(got, key=lambda p: p.transaction_id)
    batched.close()
    by_id = {p.transaction_id: p for p in one_by_one}
    for answer in answers:
        # the same features; float32 products of a batch and of one row may round apart in the 8th digit
        assert answer.fraud_probability == pytest.approx(by_id[answer.transaction_id].fraud_probability, abs=1e-6)
    logged = {r["transaction_id"]: r["features"] for r in read_json_lines(tmp_path / "batched" / "log")}
    expected = offline_features.filter(pl.col("transaction_id").is_in(list(logged)))
    for row in expected.iter_rows(named=True):
        bad = [n for n in FEATURES if not np.isclose(float(logged[row["transaction_id"]][n]), float(row[n]), atol=1e-9)]
        assert not bad, f"transaction {row['transaction_id']}: {bad} differ from the training set"


def test_a_transactions_state_reaches_the_store_behind_the_response(store, model, tmp_path) -> None:
    detector = _detector(store, {"champion": model}, tmp_path)
    moment = datetime(2018, 5, 14, 9, tzinfo=UTC)
    before = detector.features.state(3, 5)
    detector.predict(Transaction(transaction_id=1, tx_datetime=moment, customer_id=3, terminal_id=5, tx_amount=70.0))
    detector.close()  # writes what is pending
    stored = OnlineFeatures(store, "fraud_model_v1").state(3, 5)
    assert (
        stored["customer_today_last_tx_us"]
        == int(moment.timestamp() * 1_000_000)
        != before["customer_today_last_tx_us"]
    )
    assert stored["customer_today_nb_tx_at"] == 1 and stored["customer_today_amount_at"] == 70.0
    assert stored["customer_today_amount_sq_at"] == 4900.0


def test_an_unwritable_store_keeps_the_state_in_process_and_says_so(store, model, tmp_path, monkeypatch) -> None:
    detector = _detector(store, {"champion": model}, tmp_path)
    writer = detector.features.writer

    def refuse(rows: dict) -> None:
        raise OnlineStoreUnavailable("disk full")

    monkeypatch.setattr(writer._sink, "intraday", refuse)
    first = Transaction(
        transaction_id=1, tx_datetime=datetime(2018, 5, 15, 9, tzinfo=UTC), customer_id=3, terminal_id=5, tx_amount=70.0
    )  # fmt: skip (the store holds nothing of that day yet)
    detector.predict(first)
    writer.flush()
    assert not writer.healthy and writer.failures >= 1
    later = datetime(2018, 5, 15, 10, tzinfo=UTC)
    second = detector.predict(first.model_copy(update={"transaction_id": 2, "tx_datetime": later}))
    assert second.degraded and any(r.startswith("online store unwritable") for r in second.reasons)
    logged = {r["transaction_id"]: r["features"] for r in _flushed(detector, tmp_path)}
    assert logged[2]["customer_nb_tx_1d"] == logged[1]["customer_nb_tx_1d"] + 1, "the first is still seen, from memory"
    monkeypatch.undo()  # the store is back: the pending rows are written
    writer.flush()
    assert writer.healthy
    assert OnlineFeatures(store, "fraud_model_v1").state(3, 5)["customer_today_nb_tx_before"] == 1


def _flushed(detector: FraudDetector, tmp_path) -> list[dict]:
    detector.close()
    return list(read_json_lines(tmp_path / "log"))
