"""The batch pattern's parts on their own: PSI, the gate, the investigation queue's drivers, and the risk store's
publication (atomic: a crash leaves the previous batch; readers see a whole batch or none; an earlier day never
overwrites a later one), on SQLite and the real Redis."""

from __future__ import annotations

import threading
import uuid

import numpy as np
import polars as pl
import pytest

from fraud_detection.batch import risk_store as store_module
from fraud_detection.batch.gate import check
from fraud_detection.batch.params import BatchGateParams
from fraud_detection.batch.queue import card_risk, investigation_queue
from fraud_detection.batch.risk_store import RedisRiskStore, SqliteRiskStore
from fraud_detection.features.definitions import FEATURES
from fraud_detection.monitoring.drift import psi

GATE = BatchGateParams(max_psi=0.25, psi_bins=10)


def test_psi_is_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    reference = rng.beta(1, 30, 20_000)
    assert psi(reference, rng.beta(1, 30, 20_000)) < 0.01
    assert psi(reference, rng.beta(1, 5, 20_000)) > 1.0
    assert psi(np.zeros(100), np.zeros(50)) == pytest.approx(0.0), "ties merge bins instead of failing"
    with pytest.raises(ValueError, match="two non-empty samples"):
        psi(reference, np.array([]))


def test_the_gate_passes_a_sound_batch_and_names_every_problem() -> None:
    rng = np.random.default_rng(1)
    previous, scores = rng.beta(1, 30, 5000), rng.beta(1, 30, 5000)
    passed = check(5000, scores, previous, GATE)
    assert passed.passed and passed.reasons == [] and passed.psi < 0.05
    assert check(5000, scores, None, GATE).psi is None, "the first batch has nothing to compare with"
    missing = check(5001, scores, previous, GATE)
    assert not missing.passed and missing.reasons == ["5000 of 5001 transactions scored; expected every one"]
    broken = check(5000, np.where(np.arange(5000) < 3, np.nan, scores), previous, GATE)
    assert broken.reasons == ["3 scores are NaN, infinite or outside [0, 1]; expected probabilities"]
    shifted = check(5000, rng.beta(1, 3, 5000), previous, GATE)
    assert not shifted.passed and shifted.reasons[0].startswith("score PSI ")
    assert "expected at most 0.25 (params batch_predict.gate.max_psi)" in shifted.reasons[0]


def _rows(n: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    columns = {name: rng.random(n) for name in FEATURES}
    return pl.DataFrame(
        {"transaction_id": np.arange(n), "customer_id": np.arange(n) % (n // 2), **columns}
    ).with_columns(pl.lit(None, dtype=pl.Datetime("us", "UTC")).alias("tx_datetime"), pl.lit(1).alias("terminal_id"))


def test_the_queue_ranks_cards_by_their_riskiest_transaction_and_names_what_drove_it() -> None:
    rows = _rows(40)
    driver = FEATURES.index("terminal_risk_7d")

    def predict(matrix: np.ndarray) -> np.ndarray:  # a model that only looks at one feature
        return 1 / (1 + np.exp(-10 * (matrix[:, driver] - 0.5)))

    scored = rows.select("transaction_id", "customer_id").with_columns(
        pl.Series("fraud_probability", predict(rows.select(FEATURES).to_numpy()))
    )
    cards = card_risk(scored)
    assert len(cards) == 20 and cards["risk"].is_sorted(descending=True)
    assert cards["transactions"].to_list() == [2] * 20
    queue = investigation_queue(rows, scored, size=5, drivers=2, predict=predict, neutral=np.full(len(FEATURES), 0.5))
    assert (
        queue["rank"].to_list() == [1, 2, 3, 4, 5]
        and queue["customer_id"].to_list() == cards["customer_id"][:5].to_list()
    )
    top = queue["drivers"][0][0]
    assert top["feature"] == "terminal_risk_7d" and top["effect"] > 0, "the one feature the model reads drives it"
    assert queue["why"][0].startswith("terminal_risk_7d=")


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request, tmp_path):
    if request.param == "sqlite":
        opened = SqliteRiskStore(tmp_path / "risk.db")
        yield opened
    else:
        opened = RedisRiskStore("redis://127.0.0.1:6379/0", prefix=f"test-risk-{uuid.uuid4().hex[:8]}")
        yield opened
        keys = opened._redis.keys(f"{opened._prefix}:*")
        if keys:
            opened._redis.delete(*keys)
    opened.close()


def _cards(customers: range, risk: float) -> pl.DataFrame:
    return pl.DataFrame({"customer_id": list(customers), "risk": [risk] * len(customers),
                         "transactions": [1] * len(customers), "riskiest_transaction": list(customers)})  # fmt: skip


def test_publication_serves_cards_and_a_later_day_is_never_overwritten_by_an_earlier_one(store) -> None:
    assert store.published() == {} and store.lookup(1) is None
    store.publish("2018-09-02", "3", _cards(range(10), 0.9), np.full(10, 0.9))
    store.publish("2018-09-01", "3", _cards(range(5, 15), 0.1), np.full(10, 0.1))  # a backfill of an earlier day
    assert store.lookup(7)["batch_date"] == "2018-09-02" and store.lookup(7)["risk"] == 0.9
    assert store.lookup(12)["batch_date"] == "2018-09-01", "cards only in the earlier day take it"
    assert set(store.published()) == {"2018-09-01", "2018-09-02"}
    assert np.array_equal(store.scores("2018-09-02"), np.full(10, 0.9))
    store.publish("2018-09-02", "4", _cards(range(10), 0.5), np.full(10, 0.5))  # a new champion re-scores the day
    assert store.lookup(3)["model_version"] == "4" and store.published()["2018-09-02"].model_version == "4"


def test_a_crash_in_the_middle_of_a_publication_leaves_the_previous_batch(tmp_path, monkeypatch) -> None:
    store = SqliteRiskStore(tmp_path / "risk.db")
    store.publish("2018-09-01", "1", _cards(range(100), 0.2), np.full(100, 0.2))
    monkeypatch.setattr(store_module, "WRITE_CHUNK", 10)
    calls = {"n": 0}
    original = SqliteRiskStore._upsert_cards

    def crash_on_the_third_chunk(connection, rows):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("power cut")
        original(connection, rows)

    monkeypatch.setattr(SqliteRiskStore, "_upsert_cards", staticmethod(crash_on_the_third_chunk))
    with pytest.raises(OSError, match="power cut"):
        store.publish("2018-09-02", "1", _cards(range(100), 0.8), np.full(100, 0.8))
    assert calls["n"] == 3, "two chunks were written before the crash"
    assert {store.lookup(c)["batch_date"] for c in range(100)} == {"2018-09-01"}, "none of the half batch shows"
    assert list(store.published()) == ["2018-09-01"]


def test_readers_see_a_whole_batch_or_none_while_it_is_published(tmp_path, monkeypatch) -> None:
    store = SqliteRiskStore(tmp_path / "risk.db")
    store.publish("2018-09-01", "1", _cards(range(20_000), 0.2), np.full(20_000, 0.2))
    monkeypatch.setattr(store_module, "WRITE_CHUNK", 1_000)  # 20 statements: readers have time to look in between
    seen, stop = set(), threading.Event()

    def read_all() -> None:
        while not stop.is_set():
            days = {row[0] for row in store._read("SELECT day FROM cards WHERE customer_id < 20000")}
            seen.add(frozenset(days))

    reader = threading.Thread(target=read_all)
    reader.start()
    store.publish("2018-09-02", "1", _cards(range(20_000), 0.8), np.full(20_000, 0.8))
    stop.set()
    reader.join()
    assert seen <= {frozenset({"2018-09-01"}), frozenset({"2018-09-02"})}, f"a mixed snapshot: {seen}"
    assert store.lookup(19_999)["batch_date"] == "2018-09-02"
