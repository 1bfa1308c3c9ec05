"""The dashboard beside drift: data quality, system health per day, and the live quality of what was served."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from fraud_detection.monitoring.health import (
    degraded_reasons,
    quarantine_quality,
    served_quality,
    system_health,
    volume_by_day,
)

DAY = datetime(2018, 10, 1, tzinfo=UTC)


def _served(rows: list[tuple]) -> pl.DataFrame:
    """(day offset, seconds into it, latency_ms, model_version, reasons) rows, all served."""
    return pl.DataFrame(
        [{"time": DAY + timedelta(days=d, seconds=s), "tx_datetime": DAY + timedelta(days=d, seconds=s),
          "latency_ms": latency, "model_version": version, "degraded": bool(reasons), "reasons": reasons,
          "role": "served"} for d, s, latency, version, reasons in rows],
        schema_overrides={"reasons": pl.List(pl.String)},
    )  # fmt: skip


def test_system_health_per_day_has_latency_percentiles_throughput_and_rates() -> None:
    down = ["online store unavailable; features defaulted (gone)"]
    rows = [(0, s, float(s + 1), "3", []) for s in range(100)]
    rows += [(1, 0, 5.0, "rules", ["model 3 failed to score; rule fallback"]), (1, 10, 5.0, "3", down)]
    days = system_health(_served(rows))
    assert [d["day"] for d in days] == ["2018-10-01", "2018-10-02"]
    first, second = days
    assert first["requests"] == 100 and first["throughput_per_s"] == pytest.approx(100 / 99, abs=0.1)
    assert first["latency_ms"] == {"p50": 50.5, "p95": pytest.approx(95.05), "p99": pytest.approx(99.01)}
    assert (first["error_rate"], first["fallback_rate"], first["degraded_rate"]) == (0, 0, 0)
    assert (second["error_rate"], second["fallback_rate"], second["degraded_rate"]) == (0.5, 0.5, 1.0)


def test_degraded_reasons_are_counted_by_their_first_part() -> None:
    served = _served([(0, 1, 1.0, "3", ["unknown customer; no customer history"]), (0, 2, 1.0, "3", []),
                      (0, 3, 1.0, "3", ["unknown customer; no customer history", "unknown terminal; x"])])  # fmt: skip
    assert degraded_reasons(served) == {"answers": 3, "degraded": 2, "rate": 0.666667,
                                        "by_reason": {"unknown customer": 2, "unknown terminal": 1}}  # fmt: skip


def test_volume_is_levelled_against_the_reference_day() -> None:
    served = _served([(0, s, 1.0, "3", []) for s in range(10)] + [(1, 1, 1.0, "3", [])]
                     + [(2, s, 1.0, "3", []) for s in range(30)])  # fmt: skip
    levels = [(v["transactions"], v["level"]) for v in volume_by_day(served, 10.0, 0.5, 2.0)]
    assert levels == [(10, "ok"), (1, "drop"), (30, "spike")]
    assert volume_by_day(served.clear(), 10.0, 0.5, 2.0) == []


def test_quarantine_rate_and_reasons() -> None:
    summary = {"rows_read": 200, "rows_quarantined": 3, "quarantined_by_reason": {"tx_amount: negative": 3}}
    assert quarantine_quality(summary) == {"rows_read": 200, "rows_quarantined": 3, "rate": 0.015,
                                           "by_reason": {"tx_amount: negative": 3}}  # fmt: skip


def test_live_quality_uses_the_served_champions_matured_labels_only() -> None:
    def row(day: int, card: int, score: float, fraud: int | None, version: str = "3", role: str = "served") -> dict:
        moment = DAY + timedelta(days=day, hours=card)
        known = None if fraud is None else moment + timedelta(days=7)
        return {"tx_datetime": moment, "customer_id": card, "role": role, "model_version": version,
                "fraud_probability": score, "tx_fraud": fraud, "label_known_at": known}  # fmt: skip

    rows = [
        row(0, 1, 0.9, 1),
        row(0, 2, 0.2, 0),
        row(0, 3, 0.1, 0),
        row(0, 4, 0.8, 0),
        row(1, 5, 0.95, 1),  # matured at the latest label too
        row(9, 6, 0.0, 1),  # too recent: known 7 days later than the data's latest label
        row(0, 7, 0.99, 0, version="2"),
        row(0, 8, 0.99, 0, role="shadow"),
    ]  # another model, the shadow
    labelled = pl.DataFrame(rows, schema_overrides={"tx_fraud": pl.Int8})
    labelled = labelled.with_columns(label_known_at=pl.when(pl.col("customer_id") == 6).then(None)
                                     .otherwise(pl.col("label_known_at")))  # fmt: skip
    quality = served_quality(labelled, "3", 7, 2)
    assert (quality.rows, quality.frauds) == (5, 2)
    assert quality.auc_roc == pytest.approx(1.0) and quality.average_precision == pytest.approx(1.0)
    assert served_quality(labelled.filter(pl.col("tx_fraud") == 0), "3", 7, 2) is None, "one class: no figures"
