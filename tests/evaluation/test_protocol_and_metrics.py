"""The handbook's protocol and metrics, pinned on hand-made cases."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import polars as pl
import pytest

from fraud_detection.evaluation.metrics import auc_roc, average_precision, card_precision_at_k
from fraud_detection.evaluation.protocol import Fold, fold_test_set, fold_train_set, folds


def _tx(rows: list[tuple[str, int, int, float]]) -> pl.DataFrame:
    """(day, customer_id, tx_fraud, score) rows, at noon UTC."""
    return pl.DataFrame(
        [
            {"tx_datetime": datetime.fromisoformat(d).replace(hour=12, tzinfo=UTC), "customer_id": c,
             "tx_fraud": f, "score": s}
            for d, c, f, s in rows
        ]
    )  # fmt: skip


def test_folds_are_train_week_delay_week_test_week_then_weekly() -> None:
    got = folds(date(2018, 8, 8), n_folds=4, train_days=7, delay_days=7, test_days=7)
    assert got[0] == Fold(date(2018, 7, 25), date(2018, 8, 1), date(2018, 8, 8), date(2018, 8, 15))
    assert [f.test_start for f in got] == [date(2018, 8, 8), date(2018, 8, 15), date(2018, 8, 22), date(2018, 8, 29)]


def test_bad_fold_params_are_named() -> None:
    with pytest.raises(ValueError, match="train_days=0"):
        folds(date(2018, 8, 8), 4, 0, 7, 7)


def test_test_set_drops_cards_whose_fraud_is_known_on_the_test_day() -> None:
    fold = folds(date(2018, 8, 8), 1, 7, 7, 7)[0]  # train 07-25..07-31, delay 08-01..08-07, test 08-08..08-14
    tx = _tx(
        [
            ("2018-07-26", 1, 1, 0), ("2018-08-09", 1, 0, 0),  # fraud in training: card 1 known on every test day
            ("2018-08-02", 2, 1, 0), ("2018-08-09", 2, 0, 0), ("2018-08-10", 2, 0, 0),  # known from 08-10
            ("2018-08-09", 3, 1, 0), ("2018-08-12", 3, 0, 0),  # fraud inside the test week: not known yet
            ("2018-07-01", 4, 1, 0), ("2018-08-09", 4, 0, 0),  # fraud before the training week: not looked at
        ]
    )  # fmt: skip
    kept = fold_test_set(tx, fold, delay_days=7)
    assert sorted(zip(kept["customer_id"], kept["tx_datetime"].dt.day(), strict=True)) == [
        (2, 9), (3, 9), (3, 12), (4, 9)
    ]  # fmt: skip
    assert fold_train_set(tx, fold)["customer_id"].to_list() == [1]


def test_card_precision_counts_cards_once_and_skips_cards_already_detected() -> None:
    scored = _tx(
        [
            ("2018-08-08", 1, 1, 0.9), ("2018-08-08", 1, 0, 0.2),  # card 1: fraud, best score 0.9
            ("2018-08-08", 2, 0, 0.8), ("2018-08-08", 3, 1, 0.1),
            ("2018-08-09", 1, 1, 0.95),  # detected on day 1: left out on day 2
            ("2018-08-09", 3, 1, 0.7), ("2018-08-09", 4, 0, 0.6),
        ]
    )  # fmt: skip
    # day 1: top 2 = cards 1 (fraud), 2 -> 1/2; day 2 without card 1: top 2 = cards 3 (fraud), 4 -> 1/2
    assert card_precision_at_k(scored, k=2) == 0.5
    assert card_precision_at_k(scored, k=1) == 1.0  # day 1: card 1; day 2: card 3


def test_auc_and_ap_are_scikit_learns_and_refuse_a_single_class() -> None:
    labels, scores = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
    assert auc_roc(labels, scores) == 0.75
    assert average_precision(labels, scores) == pytest.approx(0.8333333)
    with pytest.raises(ValueError, match=r"labels \[0\]; expected both 0 and 1"):
        auc_roc(np.zeros(4, dtype=int), scores)
