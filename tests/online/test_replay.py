"""The prequential loop has no look-ahead: a label is learned only once known, and a transaction is scored before
any label of it can be learned. And the replayed stream's labels arrive as the feedback loop defines them."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl
import pytest

from fraud_detection.features.definitions import MICROS_PER_DAY
from fraud_detection.online.learner import Examples
from fraud_detection.online.params import Poisoning
from fraud_detection.online.replay import MICROS_PER_HOUR, Stream, poisoned, prequential, quality

START_US = int(datetime(2018, 9, 1, tzinfo=UTC).timestamp()) * 1_000_000


class Recorder:
    """A model that remembers what it learned and when it scored."""

    report = None

    def __init__(self) -> None:
        self.learned: list[tuple[int, np.ndarray, np.ndarray]] = []  # (now_us, transaction ids, known_us)
        self.known_so_far = -1

    def predict(self, x: np.ndarray, trees: np.ndarray) -> np.ndarray:
        # x's first column is the row's tx_us: every label learned so far was known before this transaction
        assert self.known_so_far <= x[:, 0].min()
        return np.zeros(len(x))

    def learn(self, batch: Examples, now_us: int) -> None:
        assert batch.known_us.max() <= now_us
        self.learned.append((now_us, batch.transaction_id, batch.known_us))
        self.known_so_far = max(self.known_so_far, int(batch.known_us.max()))


def stream(n: int = 3000, days: int = 4) -> Stream:
    rng = np.random.default_rng(0)
    tx_us = np.sort(START_US + rng.integers(0, days * MICROS_PER_DAY, n))
    ids = np.arange(n, dtype=np.int64)
    fraud = (rng.random(n) < 0.1).astype(np.int8)
    investigated = rng.random(n) < 0.2  # labelled at their day's end; the rest 1.5 days after the transaction
    day_end = (tx_us // MICROS_PER_DAY + 1) * MICROS_PER_DAY
    known = np.where(investigated, day_end, tx_us + 3 * MICROS_PER_DAY // 2)
    transactions = pl.DataFrame({
        "transaction_id": ids, "tx_datetime": pl.Series(tx_us).cast(pl.Datetime("us", "UTC")),
        "customer_id": rng.integers(0, 50, n), "tx_fraud": fraud, "tx_us": tx_us,
        "day": (tx_us - START_US) // MICROS_PER_DAY, "drifted": (tx_us - START_US) // MICROS_PER_DAY >= 2,
    })  # fmt: skip
    labels = pl.DataFrame({"transaction_id": ids, "tx_fraud": fraud, "known_us": known,
                           "investigation": investigated}).sort("known_us", "transaction_id")  # fmt: skip
    x = np.column_stack([tx_us.astype(float), rng.random(n)])
    return Stream(transactions, x, np.zeros(n), labels, x[:10], fraud[:10], "2018-09-01")


def test_labels_are_learned_once_known_and_after_the_transaction_was_scored():
    replayed, recorder = stream(), Recorder()
    scores = prequential(replayed, {"recorder": recorder}, update_every=100)
    assert scores["recorder"].shape == (3000,)
    learned = np.concatenate([ids for _, ids, _ in recorder.learned])
    last_hour = replayed.transactions["tx_us"].max() // MICROS_PER_HOUR * MICROS_PER_HOUR  # the replay's last hour
    known = replayed.labels.filter(pl.col("known_us") <= last_hour)
    assert sorted(learned) == sorted(known["transaction_id"].to_list())  # each label known in time, once
    assert all(len(ids) <= 100 for _, ids, _ in recorder.learned)  # micro-batches of update_every at most
    tx_us = replayed.transactions["tx_us"].to_numpy()
    for now_us, ids, known_us in recorder.learned:
        assert (known_us <= now_us).all()
        assert (tx_us[ids] < now_us).all()  # its transaction was scored before (in an earlier hour)


def test_poisoning_flips_the_share_of_one_days_labels():
    replayed = stream()
    flipped, n = poisoned(replayed.labels, START_US, Poisoning(day=2, fraction=0.3, seed=0))
    changed = flipped["tx_fraud"] != replayed.labels["tx_fraud"]
    on_day = ((replayed.labels["known_us"] - START_US) // MICROS_PER_DAY == 2).to_numpy()
    assert int(changed.sum()) == n and not changed.to_numpy()[~on_day].any()
    assert n / on_day.sum() == pytest.approx(0.3, abs=0.05)


def test_quality_reports_every_day_and_the_drifted_days():
    replayed = stream()
    report = quality(replayed, replayed.transactions["tx_fraud"].to_numpy() * 0.9 + 0.05, 10)
    assert [entry["drifted"] for entry in report["daily"]] == [False, False, True, True]
    assert report["all"]["average_precision"] == 1.0 and report["drifted"]["auc_roc"] == 1.0
