"""Nodes of the `monitor` stage: the champion's training window against the latest window (features and score),
the champion's live quality on the labels known by now, an Evidently report of both, our drift table, and the
decision (none / investigate / retrain / rollback). The stage recommends; `fraud-detection monitor act` acts."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from fraud_detection.evaluation.metrics import auc_roc, average_precision, card_precision_at_k
from fraud_detection.features.definitions import FEATURES
from fraud_detection.features.matrix import feature_matrix
from fraud_detection.monitoring import evidently_report
from fraud_detection.monitoring.decision import DecisionParams, Quality, decide, with_levels
from fraud_detection.monitoring.drift import drift_table
from fraud_detection.monitoring.health import (
    degraded_reasons,
    quarantine_quality,
    served_quality,
    system_health,
    volume_by_day,
)
from fraud_detection.monitoring.params import MonitorParams
from fraud_detection.monitoring.report_page import report_page
from fraud_detection.monitoring.windows import (
    SCORE,
    Span,
    choose_current,
    days,
    labelled_span,
    last_day,
    logged_rows,
)
from fraud_detection.registry.params import GateParams

log = logging.getLogger(__name__)
DRIFT_COLUMNS = [*FEATURES, SCORE]
ACT_COMMAND = "fraud-detection monitor act"


@dataclass(frozen=True)
class MonitoredModel:
    version: str
    training_window: Span
    predict: Any  # (rows, features) float64 matrix -> fraud probabilities


@dataclass(frozen=True)
class Windows:
    reference: pl.DataFrame  # the champion's training window, features + score + tx_fraud
    current: pl.DataFrame  # the latest window, features + score
    labelled: pl.DataFrame  # the window whose labels are known: features, tx_fraud, score, previous_score
    spans: dict[str, Span]
    source: str  # where `current` came from: prediction_log | features
    champion: str
    previous: str | None


def monitored_models(
    model_registry: Any, model_name: str, promotion: dict[str, Any]
) -> dict[str, MonitoredModel | None]:
    """The champion and the previous champion (None if there is none), loaded from the registry (`promotion`, the
    register stage's decision, only orders this node after it)."""
    from fraud_detection.registry.registry import champion_stack

    registry = model_registry.open(model_name)
    champion = registry.alias_version("champion")
    if champion is None:
        raise ValueError(f"model {model_name!r} has no champion; expected the register stage to set one")
    stack = [v for v in champion_stack(registry.history()) if v != champion]
    previous = stack[-1] if stack else None
    return {"champion": _load(registry, champion), "previous": None if previous is None else _load(registry, previous)}


def build_windows(
    transaction_features: pl.LazyFrame,
    prediction_records: pl.DataFrame,
    models: dict[str, MonitoredModel | None],
    params: MonitorParams,
    label_delay_days: int,
) -> Windows:
    """The reference, current and labelled samples, each scored (see monitoring.windows)."""
    champion, previous = models["champion"], models["previous"]
    source, logged, current_span = choose_current(
        transaction_features, logged_rows(prediction_records), params.source, params.window_days
    )
    end = last_day(transaction_features)
    labelled_days = labelled_span(end, params.quality_window_days, label_delay_days)
    spans = {"reference": champion.training_window, "current": current_span, "labelled": labelled_days}
    rows = {name: _rows(transaction_features, span, name) for name, span in spans.items() if name != "current"}
    current = logged if logged is not None else _scored(_rows(transaction_features, current_span, "current"), champion)
    labelled = _scored(rows["labelled"], champion)
    if previous is not None:
        labelled = labelled.with_columns(pl.Series("previous_score", previous.predict(feature_matrix(labelled))))
    reference = _scored(rows["reference"], champion)
    log.info("monitor: reference %s, current %s (from %s), labelled %s", spans["reference"].as_dict(),
             current_span.as_dict(), source, labelled_days.as_dict())  # fmt: skip
    return Windows(reference, current, labelled, spans, source, champion.version,
                   None if previous is None else previous.version)  # fmt: skip


def compute_drift(windows: Windows, params: MonitorParams) -> pl.DataFrame:
    """PSI, KS and Jensen-Shannon of every feature and the score, on every row of both windows."""
    return drift_table(_columns(windows.reference), _columns(windows.current), params.binning, params.bins)


def evidently_reports(
    windows: Windows, drift: pl.DataFrame, decision: dict[str, Any], params: MonitorParams
) -> dict[str, str]:
    """The run's page (`<day>.html`: the decision, our drift table, the live quality, and Evidently's drift report
    over the features and the score and its quality report of the labelled window against the training window)
    and Evidently's two snapshots as JSON, named after the current window's last day."""
    rows, seed, method = params.evidently.max_rows, params.evidently.seed, params.evidently.method
    sampled = {name: evidently_report.sample(getattr(windows, name), rows, seed)
               for name in ("reference", "current", "labelled")}  # fmt: skip
    drift_snapshot = evidently_report.drift_report(sampled["reference"], sampled["current"], DRIFT_COLUMNS, method,
                                                   params.bins)  # fmt: skip
    quality_snapshot = evidently_report.quality_report(sampled["reference"], sampled["labelled"], SCORE)
    page = report_page(decision, drift, evidently_report.as_html(drift_snapshot),
                       evidently_report.as_html(quality_snapshot))  # fmt: skip
    name = windows.spans["current"].last.isoformat()
    return {f"{name}.html": page, f"{name}-drift.json": evidently_report.as_json(drift_snapshot),
            f"{name}-quality.json": evidently_report.as_json(quality_snapshot)}  # fmt: skip


def serving_health(
    prediction_table: pl.DataFrame, ingest_summary: dict[str, Any], windows: Windows, params: MonitorParams
) -> dict[str, Any]:
    """Data quality (quarantine, degraded answers, volume per day against the reference) and system health per day
    (monitoring/health.py), from the ingest summary and the served records of the prediction log."""
    served = prediction_table.filter(pl.col("role") == "served")
    reference = windows.spans["reference"]
    per_day = len(windows.reference) / ((reference.last - reference.first).days + 1)
    return {
        "data_quality": {
            "quarantine": quarantine_quality(ingest_summary),
            "degraded": degraded_reasons(served),
            "volume": volume_by_day(served, per_day, params.volume.drop, params.volume.spike),
        },
        "system_health": system_health(served),
    }


def decide_action(drift: pl.DataFrame, windows: Windows, health: dict[str, Any], labelled: pl.DataFrame,
                  params: MonitorParams, gate: GateParams, top_k: int, label_delay_days: int) -> dict:  # fmt: skip
    """The decision (reports/monitoring.json): per column its statistics and level, the quality of the champion and
    of the previous champion on the labelled window (card precision@`evaluate.top_k`), and one action with its
    reasons (the rollback guardrail's floors are the register gate's). `live_quality` is the champion's own served
    scores against the labels that came back where there are any (matured), else its re-scored labelled window; the
    guardrail compares both models on the same re-scored transactions. With the data and serving health."""
    decision_params = DecisionParams.of(params, gate)
    levelled = with_levels(drift, params.thresholds)
    champion = _quality(windows.champion, windows.labelled, SCORE, top_k)
    previous = None if windows.previous is None else _quality(windows.previous, windows.labelled, "previous_score",
                                                              top_k)  # fmt: skip
    decision = decide(levelled, champion, previous, decision_params)
    log.info("monitor: action %s (%s)", decision["action"], "; ".join(decision["reasons"]))
    served = served_quality(labelled, windows.champion, label_delay_days, top_k)
    live = {"source": "served", **asdict(served)} if served else {"source": "features", **asdict(champion)}
    return {
        **decision,
        **health,
        "live_quality": live,
        "act": f"{ACT_COMMAND}  (acts automatically when monitor.act is true)",
        "source": windows.source,
        "windows": {
            name: {**span.as_dict(), "rows": len(getattr(windows, name))} for name, span in windows.spans.items()
        },
        "columns": {row.pop("column"): row for row in levelled.iter_rows(named=True)},
    }


def drift_levels(drift: pl.DataFrame, params: MonitorParams) -> pl.DataFrame:
    """The drift table with each column's level (reports/drift_table.csv)."""
    return with_levels(drift, params.thresholds)


def _load(registry: Any, version: int) -> MonitoredModel:
    from fraud_detection.registry.loading import load_model

    loaded = load_model(registry, version)
    try:
        window = Span(date.fromisoformat(loaded.tags["window_start"]), date.fromisoformat(loaded.tags["window_end"]))
    except KeyError as error:
        raise ValueError(f"version {version} has no tag {error}; expected the train stage's lineage tags") from error
    return MonitoredModel(str(version), window, loaded.scorer.predict_proba)


def _rows(features: pl.LazyFrame, span: Span, name: str) -> pl.DataFrame:
    found = days(features, span)
    if found.is_empty():
        raise ValueError(f"the {name} window {span.first}..{span.last} holds no transaction; expected data on those "
                         "days")  # fmt: skip
    return found


def _scored(rows: pl.DataFrame, model: MonitoredModel) -> pl.DataFrame:
    scores = model.predict(feature_matrix(rows)) if len(rows) else np.zeros(0)
    return rows.with_columns(pl.Series(SCORE, scores, dtype=pl.Float64))


def _columns(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    return {name: frame[name].to_numpy() for name in DRIFT_COLUMNS}


def _quality(version: str, labelled: pl.DataFrame, score: str, top_k: int) -> Quality:
    labels, scores = labelled["tx_fraud"].to_numpy(), labelled[score].to_numpy()
    both = 0 < labels.sum() < len(labels)
    scored = labelled.select("tx_datetime", "customer_id", "tx_fraud", pl.col(score).alias("score"))
    return Quality(version, len(labels), int(labels.sum()),
                   auc_roc(labels, scores) if both else None, average_precision(labels, scores) if both else None,
                   card_precision_at_k(scored, top_k) if both else None)  # fmt: skip
