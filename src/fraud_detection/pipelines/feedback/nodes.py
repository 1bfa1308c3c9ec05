"""Nodes of the `feedback` stage: the prediction log (served and shadow) joined with the label events into the
labelled predictions, and their summary (reports/feedback.json). See fraud_detection.feedback.outcomes."""

from __future__ import annotations

import logging
from typing import Any

import polars as pl

from fraud_detection.feedback import outcomes

log = logging.getLogger(__name__)


def label_predictions(prediction_table: pl.DataFrame, label_events: pl.DataFrame) -> pl.DataFrame:
    """One row per logged prediction with its label once known (the earliest of its transaction's events)."""
    labelled = outcomes.labelled_predictions(prediction_table, label_events)
    known = labelled["tx_fraud"].is_not_null().sum()
    log.info("feedback: %d predictions logged, %d labelled (%d label events)", labelled.height, known,
             label_events.height)  # fmt: skip
    return labelled


def summarise(labelled_predictions: pl.DataFrame, label_events: pl.DataFrame, top_k: int) -> dict[str, Any]:
    """Counts, the labelled share by age, and per (role, variant, model_version) its quality on the matured days
    (card precision@`evaluate.top_k`) and its decisions' quality on the labelled rows."""
    return outcomes.feedback_summary(labelled_predictions, label_events, top_k)
