"""The service's own Prometheus metrics, beside BentoML's request count and latency histogram in `/metrics`:
requests per A/B variant, degraded answers by reason, rule fallbacks, shadow disagreements / failures / drops, and
prediction-log drops. They mirror `FraudDetector.counters` (plain numbers, testable without Prometheus)."""

from __future__ import annotations

import functools
from typing import Any

PREFIX = "fraud_detection_"


@functools.cache
def _metrics() -> dict[str, Any]:
    """Created once per process (BentoML's worker runs Prometheus in multiprocess mode)."""
    from prometheus_client import Counter

    return {
        "requests": Counter(f"{PREFIX}requests", "Predictions served, by A/B variant", ["variant"]),
        "degraded": Counter(f"{PREFIX}degraded", "Degraded answers, by reason", ["reason"]),
        "fallbacks": Counter(f"{PREFIX}fallbacks", "Rule fallbacks (the model failed to score)"),
        "shadow_disagreements": Counter(f"{PREFIX}shadow_disagreements", "Shadow decisions unlike the served one"),
        "shadow_failures": Counter(f"{PREFIX}shadow_failures", "Shadow scoring failures"),
        "shadow_dropped": Counter(f"{PREFIX}shadow_dropped", "Requests the lagging shadow skipped"),
        "log_dropped": Counter(f"{PREFIX}prediction_log_dropped", "Prediction log records dropped under overload"),
    }


class Exporter:
    """Adds what the counters gained since the last export."""

    def __init__(self) -> None:
        self._seen: dict[tuple, float] = {}

    def export(self, counters: Any, log_dropped: int) -> None:
        metrics = _metrics()
        for variant, value in counters.requests.items():
            self._add(metrics["requests"].labels(variant=variant), ("requests", variant), value)
        for reason, value in counters.degraded.items():
            self._add(metrics["degraded"].labels(reason=reason), ("degraded", reason), value)
        for name in ("fallbacks", "shadow_disagreements", "shadow_failures", "shadow_dropped"):
            self._add(metrics[name], (name,), getattr(counters, name))
        self._add(metrics["log_dropped"], ("log_dropped",), log_dropped)

    def _add(self, counter: Any, key: tuple, value: float) -> None:
        delta = value - self._seen.get(key, 0)
        if delta > 0:
            counter.inc(delta)
            self._seen[key] = value
