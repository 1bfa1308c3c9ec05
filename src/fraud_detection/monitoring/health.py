"""What a monitoring dashboard shows beside drift: data quality, system health and the live quality of what was
served (the monitor stage's `data_quality`, `system_health` and `live_quality` in reports/monitoring.json).

- Data quality: the ingest stage's quarantine (rows and rate by reason), the prediction log's degraded answers by
  reason, and the volume served per day against the reference window's daily volume, levelled `drop` or `spike`
  outside `monitor.volume`'s bounds.
- System health per day, from the prediction log's served records: requests, throughput (requests over the span of
  their log times), latency p50 / p95 / p99, and the rates of errors (the online store unavailable: features
  defaulted), fallbacks (answered by the rules: the model failed) and degraded answers (any reason).
- Live quality: the served champion's own scores against the labels that came back (the feedback stage's labelled
  predictions), on matured transactions only (older than the label delay at the latest label, so every one of them
  is labelled, not only the investigated ones).
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

import polars as pl

from fraud_detection.evaluation.metrics import auc_roc, average_precision, card_precision_at_k
from fraud_detection.monitoring.decision import Quality
from fraud_detection.serving.decision import RULES_VERSION

STORE_DOWN = "online store unavailable"  # serving/detector.py's reasons, up to their first ";"
DIGITS = 6


def quarantine_quality(ingest_summary: dict[str, Any]) -> dict[str, Any]:
    read = ingest_summary["rows_read"]
    return {"rows_read": read, "rows_quarantined": ingest_summary["rows_quarantined"],
            "rate": round(ingest_summary["rows_quarantined"] / read, DIGITS) if read else None,
            "by_reason": ingest_summary["quarantined_by_reason"]}  # fmt: skip


def degraded_reasons(served: pl.DataFrame) -> dict[str, Any]:
    """Degraded answers' share and their reasons (each reason up to its first `;`), counted."""
    reasons: Counter = Counter()
    for why in served["reasons"].to_list() if served.height else []:
        reasons.update(reason.split(";")[0] for reason in why or [])
    return {"answers": served.height, "degraded": int(served["degraded"].sum()) if served.height else 0,
            "rate": round(float(served["degraded"].mean()), DIGITS) if served.height else None,
            "by_reason": dict(reasons.most_common())}  # fmt: skip


def volume_by_day(served: pl.DataFrame, reference_per_day: float, drop: float, spike: float) -> list[dict[str, Any]]:
    """Transactions served per day against the reference's daily volume; `drop` below `drop` times it, `spike`
    above `spike` times it."""
    if not served.height:
        return []
    days = served.group_by(pl.col("tx_datetime").dt.date().alias("day")).len().sort("day")
    out = []
    for day, count in days.iter_rows():
        ratio = count / reference_per_day if reference_per_day else None
        level = (
            "drop" if ratio is not None and ratio < drop else "spike" if ratio is not None and ratio > spike else "ok"
        )
        out.append({"day": day.isoformat(), "transactions": count, "reference_per_day": round(reference_per_day, 1),
                    "ratio": None if ratio is None else round(ratio, DIGITS), "level": level})  # fmt: skip
    return out


def system_health(served: pl.DataFrame) -> list[dict[str, Any]]:
    """Per day of the log's times: requests, throughput, latency percentiles, error / fallback / degraded rates."""
    if not served.height:
        return []
    store_down = pl.col("reasons").list.eval(pl.element().str.starts_with(STORE_DOWN)).list.any()
    days = (
        served.with_columns(day=pl.col("time").dt.date(), store_down=store_down.fill_null(False))
        .group_by("day")
        .agg(
            requests=pl.len(),
            span_s=(pl.col("time").max() - pl.col("time").min()).dt.total_microseconds() / 1e6,
            p50=pl.col("latency_ms").quantile(0.50, "linear"),
            p95=pl.col("latency_ms").quantile(0.95, "linear"),
            p99=pl.col("latency_ms").quantile(0.99, "linear"),
            error_rate=pl.col("store_down").mean(),
            fallback_rate=(pl.col("model_version") == RULES_VERSION).mean(),
            degraded_rate=pl.col("degraded").mean(),
        )
        .sort("day")
    )
    return [{"day": row["day"].isoformat(), "requests": row["requests"],
             "throughput_per_s": round(row["requests"] / row["span_s"], 1) if row["span_s"] else None,
             "latency_ms": {name: round(row[name], 3) for name in ("p50", "p95", "p99")},
             **{name: round(row[name], DIGITS) for name in ("error_rate", "fallback_rate", "degraded_rate")}}
            for row in days.iter_rows(named=True)]  # fmt: skip


def served_quality(labelled: pl.DataFrame, version: str, label_delay_days: int, top_k: int) -> Quality | None:
    """The served champion's quality on its matured labelled predictions; None without both classes there."""
    served = labelled.filter((pl.col("role") == "served") & (pl.col("model_version") == version))
    known = served["label_known_at"].max() if served.height else None
    if known is None:
        return None
    matured = served.filter(pl.col("tx_fraud").is_not_null()
                            & (pl.col("tx_datetime") + timedelta(days=label_delay_days) <= known))  # fmt: skip
    labels, scores = matured["tx_fraud"].to_numpy(), matured["fraud_probability"].to_numpy()
    if not 0 < labels.sum() < len(labels):
        return None
    scored = matured.select("tx_datetime", "customer_id", "tx_fraud", score="fraud_probability")
    return Quality(version, len(labels), int(labels.sum()), auc_roc(labels, scores), average_precision(labels, scores),
                   card_precision_at_k(scored, top_k))  # fmt: skip
