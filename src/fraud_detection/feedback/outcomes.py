"""Served predictions joined with their outcomes: the labelled predictions and the feedback summary.

The labelled predictions hold one row per logged prediction (served and shadow), with the label that counts once it
is known: of a transaction's label events, the earliest `known_at` (on a tie, the investigation's). Every event of a
transaction must carry the same `tx_fraud`. The summary (reports/feedback.json) counts what is labelled, how the
labels arrive with a prediction's age, and per (role, variant, model_version) the ranking quality on the matured days
and the quality of the decisions on the labelled rows.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import polars as pl

from fraud_detection.evaluation.metrics import auc_roc, average_precision, card_precision_at_k
from fraud_detection.feedback.labels import SOURCES

UTC_TIME = pl.Datetime("us", "UTC")
PREDICTION_COLUMNS: dict[str, pl.DataType] = {
    "transaction_id": pl.Int64(), "tx_datetime": UTC_TIME, "customer_id": pl.Int64(), "tx_amount": pl.Float64(),
    "role": pl.String(), "variant": pl.String(), "model_version": pl.String(), "fraud_probability": pl.Float64(),
    "decision": pl.String(), "latency_ms": pl.Float64(), "degraded": pl.Boolean(),
}  # fmt: skip
LABEL_COLUMNS: dict[str, pl.DataType] = {"tx_fraud": pl.Int8(), "label_known_at": UTC_TIME, "label_source": pl.String()}
COLUMNS = {**PREDICTION_COLUMNS, **LABEL_COLUMNS}  # the labelled predictions, in this order
GROUP = ("role", "variant", "model_version")
AGES = {"0-1d": timedelta(days=1), "1-7d": timedelta(days=7), "7d+": None}  # bucket -> its age's upper bound
FLAGGED = ("review", "decline")  # the decisions that send a transaction to an analyst (or stop it)
DIGITS = 6


class LabelConflictError(ValueError):
    """Label events of one transaction disagree on `tx_fraud`."""


def outcomes(label_events: pl.DataFrame) -> pl.DataFrame:
    """The label that counts, one row per labelled transaction: its earliest event (on a tie of `known_at`, the
    investigation's). Raises LabelConflictError, naming the transaction and both values, if its events disagree."""
    _check_agreement(label_events)
    investigation_first = pl.col("source") != "investigation"
    return (
        label_events.sort("known_at", investigation_first)
        .unique("transaction_id", keep="first")
        .select(
            pl.col("transaction_id").cast(pl.Int64),
            pl.col("tx_fraud").cast(pl.Int8),
            pl.col("known_at").cast(UTC_TIME).alias("label_known_at"),
            pl.col("source").alias("label_source"),
        )
    )


def labelled_predictions(predictions: pl.DataFrame, label_events: pl.DataFrame) -> pl.DataFrame:
    """Every logged prediction (`predictions`: the prediction log's table) with its outcome (`COLUMNS`; the label
    columns null until known), in time order: exactly one row per logged prediction, whatever the events hold
    (duplicates, labels of transactions never predicted). An empty log gives an empty table with the columns."""
    if predictions.width == 0:
        return pl.DataFrame(schema=COLUMNS)
    missing = [name for name in PREDICTION_COLUMNS if name not in predictions.columns]
    if missing:
        raise ValueError(f"the prediction log's table lacks the columns {missing}; expected {list(PREDICTION_COLUMNS)}")
    rows = predictions.select(pl.col(name).cast(kind) for name, kind in PREDICTION_COLUMNS.items())
    joined = rows.join(outcomes(label_events), on="transaction_id", how="left", maintain_order="left")
    return joined.select(list(COLUMNS)).sort("tx_datetime", "transaction_id", "role", maintain_order=True)


def feedback_summary(labelled: pl.DataFrame, label_events: pl.DataFrame, top_k: int) -> dict[str, Any]:
    """The summary of the labelled predictions (reports/feedback.json): counts, the labelled share by the
    predictions' age (against the data's "now": the latest `known_at` of all events, or the latest prediction if
    later), and one entry per (role, variant, model_version) (see `group_summary`)."""
    known = labelled.filter(pl.col("tx_fraud").is_not_null())
    groups = labelled.partition_by(GROUP, maintain_order=True, as_dict=True)
    return {
        "predictions": labelled.height,
        "labelled": known.height,
        "labelled_by_source": {source: int((known["label_source"] == source).sum()) for source in SOURCES},
        "labelled_share_by_age": labelled_share_by_age(labelled, data_now(labelled, label_events)),
        "groups": [group_summary(dict(zip(GROUP, key, strict=True)), groups[key], top_k) for key in sorted(
            groups, key=lambda k: tuple((v is None, v or "") for v in k))],
    }  # fmt: skip


def data_now(labelled: pl.DataFrame, label_events: pl.DataFrame) -> Any:
    """The latest moment the data knows of: the latest `known_at` of the events, or the latest prediction's time if
    later (None when both are empty)."""
    moments = [labelled["tx_datetime"].max(), label_events["known_at"].max()]
    found = [moment for moment in moments if moment is not None]
    return max(found) if found else None


def labelled_share_by_age(labelled: pl.DataFrame, now: Any) -> dict[str, float | None]:
    """The labelled share of the predictions in each age bucket (`AGES`: under a day, 1 to 7 days, 7 days and
    more); None for a bucket without predictions."""
    if now is None or labelled.height == 0:
        return dict.fromkeys(AGES)
    age = pl.lit(now).cast(UTC_TIME) - pl.col("tx_datetime")
    bucket = pl.when(age < AGES["0-1d"]).then(pl.lit("0-1d")).when(age < AGES["1-7d"]).then(pl.lit("1-7d"))
    counts = labelled.group_by(bucket.otherwise(pl.lit("7d+")).alias("age")).agg(
        pl.len().alias("n"), pl.col("tx_fraud").is_not_null().sum().alias("known")
    )
    shares = {age: known / n for age, n, known in counts.iter_rows()}
    return {name: _rounded(shares.get(name)) for name in AGES}


def group_summary(key: dict[str, str | None], rows: pl.DataFrame, top_k: int) -> dict[str, Any]:
    """One group's figures: its predictions, labelled rows and frauds; AUC ROC, average precision and card
    precision@`top_k` on its matured days (a day is matured when every prediction of the group that day is
    labelled; card precision per day, then averaged, as the handbook does); the decisions' quality on its labelled
    rows. A metric that is undefined (one class only, no matured day) is None."""
    known = rows.filter(pl.col("tx_fraud").is_not_null())
    return {
        **key,
        "n": rows.height,
        "labelled": known.height,
        "frauds": int((known["tx_fraud"] == 1).sum()),
        **matured_quality(rows, top_k),
        **decision_quality(known),
    }


def matured_quality(rows: pl.DataFrame, top_k: int) -> dict[str, Any]:
    """AUC ROC and average precision over the matured days' rows, card precision@`top_k` per matured day then
    averaged, and the number of matured days."""
    day = pl.col("tx_datetime").dt.date()
    matured = rows.filter(pl.col("tx_fraud").is_not_null().all().over(day))
    labels, scores = matured["tx_fraud"].to_numpy(), matured["fraud_probability"].to_numpy()
    both = 0 < labels.sum() < len(labels)
    scored = matured.select("tx_datetime", "customer_id", "tx_fraud", pl.col("fraud_probability").alias("score"))
    return {
        "matured_days": matured.select(day.n_unique()).item(),
        "auc_roc": _rounded(auc_roc(labels, scores)) if both else None,
        "average_precision": _rounded(average_precision(labels, scores)) if both else None,
        f"card_precision_at_{top_k}": _rounded(card_precision_at_k(scored, top_k)) if matured.height else None,
    }


def decision_quality(known: pl.DataFrame) -> dict[str, Any]:
    """What the decisions did on the labelled rows: precision and recall of `decline`, and of `review` or
    `decline`; the fraud amount caught (reviewed or declined) and missed (approved); genuine transactions declined."""
    fraud, decision = pl.col("tx_fraud") == 1, pl.col("decision")
    declined, flagged = decision == "decline", decision.is_in(FLAGGED)
    c = known.select(
        frauds=fraud.sum(),
        declined=declined.sum(),
        declined_frauds=(fraud & declined).sum(),
        flagged=flagged.sum(),
        flagged_frauds=(fraud & flagged).sum(),
        caught=pl.col("tx_amount").filter(fraud & flagged).sum(),
        missed=pl.col("tx_amount").filter(fraud & (decision == "approve")).sum(),
        false_declines=(~fraud & declined).sum(),
    ).row(0, named=True)
    return {
        "precision_at_decline": _ratio(c["declined_frauds"], c["declined"]),
        "recall_at_decline": _ratio(c["declined_frauds"], c["frauds"]),
        "precision_at_review": _ratio(c["flagged_frauds"], c["flagged"]),
        "recall_at_review": _ratio(c["flagged_frauds"], c["frauds"]),
        "fraud_amount_caught": _rounded(float(c["caught"])),
        "fraud_amount_missed": _rounded(float(c["missed"])),
        "false_declines": int(c["false_declines"]),
    }


def _check_agreement(label_events: pl.DataFrame) -> None:
    values = label_events.group_by("transaction_id").agg(
        pl.col("tx_fraud").min().alias("low"), pl.col("tx_fraud").max().alias("high")
    )
    disagreeing = values.filter(pl.col("low") != pl.col("high")).sort("transaction_id")
    if disagreeing.height:
        transaction_id, low, high = disagreeing.row(0)
        raise LabelConflictError(
            f"label events of transaction {transaction_id} disagree: tx_fraud={low} and tx_fraud={high}; expected "
            f"every event of a transaction to carry the same label ({disagreeing.height} transaction(s) disagree)"
        )


def _ratio(part: int, whole: int) -> float | None:
    return _rounded(part / whole) if whole else None


def _rounded(value: float | None) -> float | None:
    """`value` to `DIGITS` digits; None for a missing or non-finite value (the JSON holds no NaN)."""
    return None if value is None or not math.isfinite(value) else round(float(value), DIGITS)
