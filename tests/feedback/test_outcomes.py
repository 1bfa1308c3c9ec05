"""The labelled predictions and their summary on hand-built logs: no row lost or duplicated whatever the label
events hold, the label that counts, a clear error when labels disagree, empty inputs, and the summary's figures
worked out by hand."""

from __future__ import annotations

import json

import polars as pl
import pytest

from fraud_detection.feedback.labels import SCHEMA
from fraud_detection.feedback.outcomes import (
    COLUMNS,
    LabelConflictError,
    data_now,
    feedback_summary,
    labelled_predictions,
    labelled_share_by_age,
)
from tests.feedback.examples import at, events, example_events, example_records, record, table

TOP_K = 3


def _summary() -> dict:
    labelled = labelled_predictions(table(example_records()), example_events())
    return feedback_summary(labelled, example_events(), TOP_K)


def _group(summary: dict, role: str) -> dict:
    [group] = [g for g in summary["groups"] if g["role"] == role]
    return group


def test_every_logged_prediction_is_one_row_whatever_the_events_hold() -> None:
    """Duplicate events, two events of one transaction, a label of a transaction never predicted, shadow rows and
    a prediction logged twice: rows == logged predictions, each transaction as often as it was logged."""
    records = [*example_records(), record(3, at(1, 11), 3, 30.0, 0.6, "decline")]  # re-logged
    labelled = labelled_predictions(table(records), example_events())
    assert labelled.height == len(records) == 15
    assert sorted(labelled["transaction_id"]) == sorted(r["transaction_id"] for r in records)
    assert 99 not in labelled["transaction_id"].to_list()
    assert labelled.filter(pl.col("role") == "shadow").height == 7
    assert labelled.filter(pl.col("transaction_id") == 7)["tx_fraud"].null_count() == 2


def test_the_columns_are_the_documented_ones_in_order() -> None:
    labelled = labelled_predictions(table(example_records()), example_events())
    assert labelled.schema == pl.Schema(COLUMNS)
    assert list(COLUMNS) == ["transaction_id", "tx_datetime", "customer_id", "tx_amount", "role", "variant",
                             "model_version", "fraud_probability", "decision", "latency_ms", "degraded", "tx_fraud",
                             "label_known_at", "label_source"]  # fmt: skip
    assert labelled["tx_datetime"].is_sorted()


def test_the_earliest_event_counts_and_an_investigation_wins_a_tie() -> None:
    labelled = labelled_predictions(table(example_records()), example_events())
    six = labelled.filter(pl.col("transaction_id") == 6).row(0, named=True)
    assert (six["label_source"], six["label_known_at"]) == ("investigation", at(2, 23))
    records = [record(8, at(1), 8, 1.0, 0.5, "approve")]
    tie = events((8, 1, at(3), "delayed"), (8, 1, at(3), "investigation"), (8, 1, at(4), "delayed"))
    assert labelled_predictions(table(records), tie)["label_source"].to_list() == ["investigation"]


def test_disagreeing_labels_fail_naming_the_transaction_and_both_values() -> None:
    conflict = events((1, 1, at(2), "investigation"), (1, 0, at(9), "delayed"), (2, 0, at(9), "delayed"))
    with pytest.raises(LabelConflictError, match=r"transaction 1 disagree: tx_fraud=0 and tx_fraud=1"):
        labelled_predictions(table(example_records()), conflict)


@pytest.mark.parametrize("log", [pl.DataFrame(), table([])], ids=["no columns", "typed"])
def test_an_empty_log_gives_an_empty_table_and_a_valid_summary(log: pl.DataFrame) -> None:
    labelled = labelled_predictions(log, example_events())
    assert labelled.height == 0 and labelled.schema == pl.Schema(COLUMNS)
    summary = feedback_summary(labelled, pl.DataFrame(schema=SCHEMA), TOP_K)
    assert summary == {"predictions": 0, "labelled": 0, "labelled_by_source": {"delayed": 0, "investigation": 0},
                       "labelled_share_by_age": {"0-1d": None, "1-7d": None, "7d+": None}, "groups": []}  # fmt: skip


def test_no_label_yet_leaves_every_label_column_null() -> None:
    labelled = labelled_predictions(table(example_records()), pl.DataFrame(schema=SCHEMA))
    assert labelled.height == 14
    assert labelled.select(pl.col("tx_fraud", "label_known_at", "label_source").null_count()).row(0) == (14, 14, 14)


def test_the_summary_counts_and_the_decisions_quality_by_hand() -> None:
    """Labelled rows 1..6 (frauds 1, 2, 4, 6); declined 1, 3, 6; reviewed 2; approved 4, 5."""
    summary = _summary()
    assert (summary["predictions"], summary["labelled"]) == (14, 12)
    assert summary["labelled_by_source"] == {"delayed": 10, "investigation": 2}
    served = _group(summary, "served")
    assert (served["variant"], served["model_version"], served["n"], served["labelled"], served["frauds"]) == (
        "A", "1", 7, 6, 4)  # fmt: skip
    assert served["precision_at_decline"] == round(2 / 3, 6)  # 1 and 6 of 1, 3, 6
    assert served["recall_at_decline"] == 0.5  # 1 and 6 of the 4 frauds
    assert served["precision_at_review"] == 0.75  # 1, 2, 6 of 1, 2, 3, 6
    assert served["recall_at_review"] == 0.75
    assert served["fraud_amount_caught"] == 350.0  # 100 + 50 + 200
    assert served["fraud_amount_missed"] == 20.0  # transaction 4, approved
    assert served["false_declines"] == 1  # transaction 3
    shadow = _group(summary, "shadow")
    assert (shadow["variant"], shadow["model_version"], shadow["n"], shadow["frauds"]) == ("shadow", "2", 7, 4)
    assert shadow["precision_at_decline"] is None and shadow["recall_at_decline"] == 0.0
    assert shadow["fraud_amount_missed"] == 370.0
    json.dumps(summary, allow_nan=False)


def test_ranking_metrics_use_the_matured_days_only() -> None:
    """Day 2 holds an unlabelled prediction (7): only day 1 counts. Day 1: frauds at 0.9, 0.7, 0.2, genuine at
    0.6, 0.1; AUC 5/6, average precision (1 + 1 + 3/4) / 3; card precision@3: 2 frauds among the top 3 cards (with
    day 2, where 6 is the only fraud of the top 3, it would be 0.5)."""
    served = _group(_summary(), "served")
    assert served["matured_days"] == 1
    assert served["auc_roc"] == round(5 / 6, 6)
    assert served["average_precision"] == round(2.75 / 3, 6)
    assert served["card_precision_at_3"] == round(2 / 3, 6)
    shadow = _group(_summary(), "shadow")  # every score 0.5: a tie everywhere
    assert shadow["auc_roc"] == 0.5 and shadow["matured_days"] == 1


def test_ranking_metrics_are_null_when_undefined() -> None:
    genuine_only = events(*[(t, 0, at(9), "delayed") for t in range(1, 8)])
    served = _group(feedback_summary(labelled_predictions(table(example_records()), genuine_only), genuine_only, 3),
                    "served")  # fmt: skip
    assert served["auc_roc"] is None and served["average_precision"] is None
    assert served["card_precision_at_3"] == 0.0 and served["matured_days"] == 2
    nothing_known = labelled_predictions(table(example_records()), pl.DataFrame(schema=SCHEMA))
    unlabelled = _group(feedback_summary(nothing_known, pl.DataFrame(schema=SCHEMA), 3), "served")
    assert unlabelled["matured_days"] == 0
    assert [unlabelled[k] for k in ("auc_roc", "average_precision", "card_precision_at_3")] == [None, None, None]
    assert unlabelled["precision_at_review"] is None and unlabelled["recall_at_review"] is None


def test_the_labelled_share_by_age() -> None:
    """Now is the latest known_at (day 9, 09:00). 7 days old or more: day 1 and transaction 6 (day 2, 09:00), all
    labelled; 1 to 7 days: 7 (day 2, 10:00; unknown) and 21 (day 6, investigated); under a day: 20 (unknown)."""
    records = [*example_records()[:7], record(20, at(9, 8), 9, 1.0, 0.1, "approve"),
               record(21, at(6, 9), 9, 1.0, 0.1, "approve")]  # fmt: skip
    known = pl.concat([example_events(), events((21, 0, at(6, 20), "investigation"))])
    labelled = labelled_predictions(table(records), known)
    now = data_now(labelled, known)
    assert now == at(9, 9)
    assert labelled_share_by_age(labelled, now) == {"0-1d": 0.0, "1-7d": 0.5, "7d+": 1.0}


def test_now_is_the_latest_prediction_when_it_is_later_than_every_label() -> None:
    records = [record(1, at(20), 1, 1.0, 0.1, "approve")]
    assert data_now(labelled_predictions(table(records), example_events()), example_events()) == at(20)
