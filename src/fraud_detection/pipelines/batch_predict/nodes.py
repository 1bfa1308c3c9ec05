"""Nodes of the `batch_predict` stage: score the day (or a range of days) with the champion, gate each batch, write
its predictions and investigation queue, publish its per-card risk table, and fail the stage, naming the reasons,
if a batch was rejected (the previous batch stays published; the rejected one is kept for inspection). Inside a DVC
experiment the batches are scored and written to the stage's outputs but not published."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import polars as pl

from fraud_detection.batch import gate as batch_gate
from fraud_detection.batch.params import BatchPredictParams
from fraud_detection.batch.queue import card_risk, investigation_queue
from fraud_detection.batch.risk_store import RiskStore
from fraud_detection.batch.scoring import SCORE, day_rows, score_polars
from fraud_detection.registry.registry import RegistryAddress
from fraud_detection.runtime.spark import SparkParams

log = logging.getLogger(__name__)
LATEST = "latest"
UNPUBLISHED = "unpublished"  # a batch that passed the gate inside a DVC experiment: scored, not published


class BatchRejected(RuntimeError):
    """One or more batches failed the gate (the stage fails; what passed is published)."""


@dataclass(frozen=True)
class Scored:
    """A batch that passed the gate, waiting to be published once its files are written."""

    day: str
    model_version: str
    cards: pl.DataFrame
    scores: np.ndarray


def plan_days(transaction_features: pl.LazyFrame, promotion: dict[str, Any], params: BatchPredictParams) -> list[str]:
    """The days to score: `batch_predict.start_date`..`end_date` (a backfill, inclusive), else `batch_predict.date`
    (`latest`: the last day of the data). `promotion` (the register stage's decision) is read so that DVC runs this
    stage again after a new registration."""
    first, last = (d.date() for d in transaction_features.select(
        pl.col("tx_datetime").min().alias("a"), pl.col("tx_datetime").max().alias("b")).collect().row(0))  # fmt: skip
    start, end = params.start_date, params.end_date
    if start is None or end is None:
        start = end = last if params.date == LATEST else params.date
    if start < first or end > last:
        raise ValueError(f"batch_predict days {start}..{end}; expected days of the data, {first}..{last}, in order")
    log.info("batch_predict: %s..%s (champion after the register stage: %s)", start, end,
             promotion.get("aliases", {}).get("champion"))  # fmt: skip
    return [(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)]


def score_days(
    transaction_features: pl.LazyFrame,
    days: list[str],
    model_registry: Any,
    risk_store: RiskStore,
    params: BatchPredictParams,
    model_name: str,
    spark: SparkParams,
    promotion: dict[str, Any] | None = None,
) -> tuple[dict[str, pl.DataFrame], dict[str, pl.DataFrame], dict[str, pl.DataFrame], list[Scored], dict]:
    """Each day scored with the champion and gated. Returns predictions and queues of the batches that passed,
    the rejected batches (with their reasons), the batches to publish, and the report. Inside a DVC experiment whose
    register stage found its candidate fit to be champion (`promotion`, not applied), that candidate scores."""
    from fraud_detection.registry.loading import load_model

    champion = load_model(model_registry.open(model_name), serving_ref(promotion or {}, model_registry.dvc_experiment))
    version, scorer = str(champion.version), champion.scorer
    published = risk_store.published()
    predictions, queues, rejected, passed, report = {}, {}, {}, [], {}
    for day in days:
        if day in published and published[day].model_version == version:
            report[day] = {"status": "skipped", "reason": f"already published with version {version}"}
            continue
        rows = day_rows(transaction_features, date.fromisoformat(day))
        scored = _score(params.engine, rows, scorer.predict_proba, spark).with_columns(
            pl.lit(version).alias("model_version"), pl.lit(day).alias("batch_date"))  # fmt: skip
        scores = scored[SCORE].to_numpy()
        previous = _previous(published, {s.day: s for s in passed}, day, risk_store)
        result = batch_gate.check(len(rows), scores, previous, params.gate)
        figures = {"transactions": len(rows), "psi": result.psi, "mean_score": float(np.nanmean(scores)) if len(scores)
                   else None, "model_version": version}  # fmt: skip
        if not result.passed:
            rejected[day] = scored.with_columns(pl.lit("; ".join(result.reasons)).alias("rejected_because"))
            report[day] = {"status": "rejected", "reasons": result.reasons, **figures}
            continue
        cards = card_risk(scored)
        predictions[day] = scored
        queues[day] = investigation_queue(rows, scored, params.queue_size, params.drivers,
                                          scorer.predict_proba, scorer.neutral_row())  # fmt: skip
        passed.append(Scored(day, version, cards, scores))
        report[day] = {"status": "published", "cards": len(cards), **figures}
    return predictions, queues, rejected, passed, report


def serving_ref(promotion: dict[str, Any], dvc_experiment: str | None) -> str | int:
    """What would serve after the register stage: `champion`; inside a DVC experiment, the version that experiment's
    gate found fit to be champion (the experiment moved no alias). Outside one, always the champion."""
    registered_in = (promotion.get("experiment") or {}).get("name")
    if dvc_experiment is not None and registered_in is not None and promotion["decision"]["alias"] == "champion":
        return int(promotion["version"])
    return "champion"


def publish_batches(
    passed: list[Scored], risk_store: RiskStore, report: dict, model_registry: RegistryAddress | None = None
) -> dict:
    """Each passed batch's risk table, published once its predictions and queue are written (this node runs after
    they are saved). Returns the report with the publication times. Inside a DVC experiment (the registry address
    names it) nothing is published: the batches stay in the experiment's own outputs, marked `unpublished`."""
    experiment = model_registry.dvc_experiment if model_registry is not None else None
    if experiment is not None:
        return _unpublished(passed, report, experiment)
    for batch in passed:
        published = risk_store.publish(batch.day, batch.model_version, batch.cards, batch.scores)
        report[batch.day]["published_at"] = published.published_at
    return _summary(report)


def _unpublished(passed: list[Scored], report: dict, experiment: str) -> dict:
    for batch in passed:
        report[batch.day]["status"] = UNPUBLISHED
        report[batch.day]["reason"] = f"DVC experiment {experiment}: the risk store is left as it was"
    return {**_summary(report), UNPUBLISHED: [d for d, r in report.items() if r["status"] == UNPUBLISHED],
            "experiment": experiment}  # fmt: skip


def _summary(report: dict) -> dict:
    return {"days": report, "published": [d for d, r in report.items() if r["status"] == "published"],
            "rejected": [d for d, r in report.items() if r["status"] == "rejected"],
            "skipped": [d for d, r in report.items() if r["status"] == "skipped"]}  # fmt: skip


def fail_on_rejections(batch_report: dict) -> None:
    """Fails the run (after everything else is written) when a batch was rejected."""
    if batch_report["rejected"]:
        days = batch_report["days"]
        why = "; ".join(f"{d}: {' / '.join(days[d]['reasons'])}" for d in batch_report["rejected"])
        count = len(batch_report["rejected"])
        raise BatchRejected(f"batch_predict rejected {count} batch(es), {why}. The previous batch stays published; "
                            "the rejected ones are in data/07_model_output/rejected/")  # fmt: skip


def _score(engine: str, rows: pl.DataFrame, predict: Any, spark: SparkParams) -> pl.DataFrame:
    if engine == "spark":
        from fraud_detection.batch.scoring import score_spark
        from fraud_detection.runtime.spark import get_spark

        return score_spark(get_spark(spark), rows, predict)
    return score_polars(rows, predict)


def _previous(published: dict, passed_now: dict[str, Scored], day: str, store: RiskStore) -> np.ndarray | None:
    """Scores of the latest batch published before `day` (this run's included)."""
    earlier = sorted(d for d in {*published, *passed_now} if d < day)
    if not earlier:
        return None
    latest = earlier[-1]
    return passed_now[latest].scores if latest in passed_now else store.scores(latest)
