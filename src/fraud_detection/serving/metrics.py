"""The service's Prometheus metrics (`GET /metrics`): HTTP requests by endpoint and status with a latency
histogram (`fraud_detection_http_request_duration_seconds`), and the detector's counters: predictions per A/B
variant, degraded answers by reason, rule fallbacks, shadow disagreements / failures / drops, prediction-log drops
and online-store write failures. The detector's counters are plain numbers (testable without Prometheus), exported
every `serve.metrics_interval_s`.

BentoML's own request metrics middleware is switched off (`serve` in service.py): it costs about 0.1 ms a request,
more than these. Every worker writes to Prometheus's multiprocess files (BentoML sets PROMETHEUS_MULTIPROC_DIR), so
`/metrics` on any worker reports them all.
"""

from __future__ import annotations

import functools
import os
from typing import Any

PREFIX = "fraud_detection_"
BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@functools.cache
def _metrics() -> dict[str, Any]:
    """Created once per process (BentoML's worker runs Prometheus in multiprocess mode)."""
    from prometheus_client import Counter, Histogram

    return {
        "http_requests": Counter(
            f"{PREFIX}http_requests", "HTTP requests, by endpoint and status", ["endpoint", "status"]
        ),
        "http_duration": Histogram(
            f"{PREFIX}http_request_duration_seconds", "Time to answer, by endpoint", ["endpoint"], buckets=BUCKETS
        ),
        "requests": Counter(f"{PREFIX}requests", "Predictions served, by A/B variant", ["variant"]),
        "degraded": Counter(f"{PREFIX}degraded", "Degraded answers, by reason", ["reason"]),
        "fallbacks": Counter(f"{PREFIX}fallbacks", "Rule fallbacks (the model failed to score)"),
        "shadow_disagreements": Counter(f"{PREFIX}shadow_disagreements", "Shadow decisions unlike the served one"),
        "shadow_failures": Counter(f"{PREFIX}shadow_failures", "Shadow scoring failures"),
        "shadow_dropped": Counter(f"{PREFIX}shadow_dropped", "Requests the lagging shadow skipped"),
        "log_dropped": Counter(f"{PREFIX}prediction_log_dropped", "Prediction log records dropped under overload"),
        "store_write_failures": Counter(f"{PREFIX}online_store_write_failures", "Failed writes of the online state"),
    }


def observe(endpoint: str, status: int, seconds: float) -> None:
    """One HTTP answer (called by the endpoints themselves)."""
    metrics = _metrics()
    metrics["http_requests"].labels(endpoint, str(status)).inc()
    metrics["http_duration"].labels(endpoint).observe(seconds)


def exposition() -> bytes:
    """Every worker's metrics, in Prometheus's text format."""
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:  # one process (tests): its own registry
        from prometheus_client import REGISTRY

        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


class Exporter:
    """Adds what the counters gained since the last export."""

    def __init__(self) -> None:
        self._seen: dict[tuple, float] = {}

    def export(self, counters: Any, log_dropped: int, store_write_failures: int = 0) -> None:
        metrics = _metrics()
        for variant, value in counters.requests.items():
            self._add(metrics["requests"].labels(variant=variant), ("requests", variant), value)
        for reason, value in counters.degraded.items():
            self._add(metrics["degraded"].labels(reason=reason), ("degraded", reason), value)
        for name in ("fallbacks", "shadow_disagreements", "shadow_failures", "shadow_dropped"):
            self._add(metrics[name], (name,), getattr(counters, name))
        self._add(metrics["log_dropped"], ("log_dropped",), log_dropped)
        self._add(metrics["store_write_failures"], ("store_write_failures",), store_write_failures)

    def _add(self, counter: Any, key: tuple, value: float) -> None:
        delta = value - self._seen.get(key, 0)
        if delta > 0:
            counter.inc(delta)
            self._seen[key] = value
