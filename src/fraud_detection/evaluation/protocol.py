"""Folds and test sets: train on one period, skip the label delay, test on the next period."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import polars as pl


@dataclass(frozen=True)
class Fold:
    """Days [train_start, test_start - delay) to train on, [test_start, test_end) to test on."""

    train_start: date
    train_end: date  # exclusive; the delay gap follows
    test_start: date
    test_end: date  # exclusive


def folds(first_test_start: date, n_folds: int, train_days: int, delay_days: int, test_days: int) -> list[Fold]:
    """`n_folds` folds, their test periods starting at `first_test_start` and every `test_days` after."""
    if min(n_folds, train_days, test_days) < 1 or delay_days < 0:
        raise ValueError(
            f"folds={n_folds}, train_days={train_days}, test_days={test_days} must be >= 1 and "
            f"delay_days={delay_days} >= 0"
        )
    out = []
    for i in range(n_folds):
        test_start = first_test_start + timedelta(days=i * test_days)
        train_end = test_start - timedelta(days=delay_days)
        out.append(
            Fold(train_end - timedelta(days=train_days), train_end, test_start, test_start + timedelta(days=test_days))
        )
    return out


def _day() -> pl.Expr:
    return pl.col("tx_datetime").dt.date()


def fold_train_set(transactions: pl.DataFrame, fold: Fold) -> pl.DataFrame:
    return transactions.filter(_day().is_between(fold.train_start, fold.train_end, closed="left"))


def fold_test_set(transactions: pl.DataFrame, fold: Fold, delay_days: int) -> pl.DataFrame:
    """The test period without the transactions of cards already known as compromised on their day.

    On a test day T a card is known as compromised if one of its frauds happened on a day before T - delay (its label
    is known by T), from the start of the training period on: the training period's frauds and those of the delay
    gap that are old enough.
    """
    frauds = transactions.filter((pl.col("tx_fraud") == 1) & (_day() >= fold.train_start))
    # A fraud on day F is known on the days after F + delay.
    unknown_until = frauds.group_by("customer_id").agg((_day().min() + pl.duration(days=delay_days)).alias("until"))
    test = transactions.filter(_day().is_between(fold.test_start, fold.test_end, closed="left"))
    return (
        test.join(unknown_until, on="customer_id", how="left", maintain_order="left")
        .filter(pl.col("until").is_null() | (_day() <= pl.col("until")))
        .drop("until")
    )


def labelled_window(
    frame: pl.DataFrame, window_days: int, label_delay_days: int, before_horizon_days: int = 0
) -> pl.DataFrame:
    """The `window_days` whole days that end `before_horizon_days` before the labels' horizon: the last day of data
    + 1 - `label_delay_days` (later transactions' labels are not known yet). The train stage ends its window
    `train.holdout_days` before the horizon; the register stage's gate tests on those held-out days."""
    if frame.is_empty():
        raise ValueError("the training set is empty; expected labelled transactions")
    horizon = frame["tx_datetime"].max().date() + timedelta(days=1 - label_delay_days - before_horizon_days)
    day = pl.col("tx_datetime").dt.date()
    window = frame.filter(day.is_between(horizon - timedelta(days=window_days), horizon, closed="left"))
    if window.is_empty():
        raise ValueError(
            f"no transaction in the {window_days} days before {horizon} (window of {window_days} days, label delay "
            f"{label_delay_days} days, {before_horizon_days} days held out); expected the training set to reach "
            "further back"
        )
    return window
