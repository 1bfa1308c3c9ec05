"""One transaction in, one decision out: the request path of the real-time service, free of any web framework (the
BentoML service is a thin shell around it, and tests call it in-process).

For a transaction: assign the customer's A/B variant; read the stored state of the feature service's views from the
online store and apply the one feature definition (`features_of_one`); score with the variant's model; decide from
`serve.thresholds`; log; then push the customer's new intraday state so that the next transaction sees this one.
Faults degrade instead of failing: an online store that cannot be read gives the documented defaults (no history),
an unknown customer or terminal is flagged, a model that fails to score is replaced by the rule fallback. Each sets
`degraded: true` with its reason and is counted.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np

from fraud_detection.features.definitions import (
    CUSTOMER_DAILY,
    CUSTOMER_INTRADAY,
    FEATURES,
    MICROS_PER_DAY,
    TERMINAL_DAILY,
    features_of_one,
)
from fraud_detection.features.online import Intraday
from fraud_detection.serving.decision import FallbackRules, Thresholds, decide, rule_score
from fraud_detection.serving.prediction_log import PredictionLog
from fraud_detection.serving.routing import ABRouter
from fraud_detection.serving.schemas import Prediction, Transaction

log = logging.getLogger(__name__)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RULES_VERSION = "rules"
NO_STATE = dict.fromkeys((*CUSTOMER_DAILY, *CUSTOMER_INTRADAY, *TERMINAL_DAILY))


@dataclass(frozen=True)
class ServedModel:
    """A registry version ready to score: `predict` takes a (rows, features) float64 matrix in `FEATURES` order."""

    version: str
    predict: Callable[[np.ndarray], np.ndarray]


class FeatureSource(Protocol):
    """What the detector needs of the feature store (`StoreFeatures`: Feast's online views + the updater's writer)."""

    def state(self, customer_id: int, terminal_id: int) -> dict[str, Any]: ...

    def transaction(self, customer_id: int, tx_us: int, intraday_row: dict) -> None: ...


@dataclass
class Counters:
    """What `/metrics` exports beside BentoML's own request metrics."""

    requests: Counter = field(default_factory=Counter)  # by variant
    degraded: Counter = field(default_factory=Counter)  # by reason
    fallbacks: int = 0
    shadow_scored: int = 0
    shadow_disagreements: int = 0  # the shadow's decision differs from the served one
    shadow_failures: int = 0
    shadow_dropped: int = 0  # not scored: the shadow fell too far behind


class FraudDetector:
    def __init__(
        self,
        models: dict[str, ServedModel],
        features: FeatureSource,
        router: ABRouter,
        thresholds: Thresholds,
        rules: FallbackRules,
        prediction_log: PredictionLog,
        shadow: ServedModel | None = None,
        shadow_backlog: int = 1000,
    ) -> None:
        self.features, self.router = features, router
        self.thresholds, self.rules, self.log = thresholds, rules, prediction_log
        self.counters = Counters()
        self.swap(models, shadow)
        # The shadow scores on its own thread, after the response is built: its latency and failures never reach it
        self._shadow_pool = ThreadPoolExecutor(1, thread_name_prefix="shadow")
        self._shadow_backlog, self._shadow_pending, self._shadow_lock = shadow_backlog, 0, threading.Lock()

    def swap(self, models: dict[str, ServedModel], shadow: ServedModel | None) -> None:
        """Serve other models from the next request on (hot reload); requests in flight finish on the old ones."""
        missing = sorted(set(self.router.variants) - set(models))
        if missing:
            raise ValueError(f"serve.ab names variants {missing} without a model; expected one of {sorted(models)}")
        self.models, self.shadow = dict(models), shadow

    def versions(self) -> dict[str, str]:
        served = {variant: model.version for variant, model in self.models.items()}
        return served | ({"shadow": self.shadow.version} if self.shadow else {})

    def close(self) -> None:
        """Finish the shadow's backlog, then flush the log."""
        self._shadow_pool.shutdown(wait=True)
        self.log.close()

    def predict(self, transaction: Transaction) -> Prediction:
        start = time.perf_counter()
        variant = self.router.variant(transaction.customer_id)
        tx_us = (transaction.tx_datetime - EPOCH) // timedelta(microseconds=1)
        state, reasons = self._state(transaction)
        features = features_of_one(state, tx_us, transaction.tx_amount)
        model = self.models[variant]
        try:
            probability = float(model.predict(np.array([[features[name] for name in FEATURES]]))[0])
            if not np.isfinite(probability):
                raise ValueError(f"the model returned {probability}")
            version = model.version
        except Exception as error:  # any model failure: the rules answer instead
            log.warning("model %s failed to score transaction %s: %s", model.version, transaction.transaction_id, error)
            probability, version = rule_score(features, self.rules), RULES_VERSION
            reasons.append(f"model {model.version} failed to score; rule fallback")
            self.counters.fallbacks += 1
        self._push(transaction, state, tx_us, reasons)
        for reason in reasons:
            self.counters.degraded[reason.split(";")[0]] += 1
        self.counters.requests[variant] += 1
        prediction = Prediction(
            transaction_id=transaction.transaction_id,
            fraud_probability=probability,
            decision=decide(probability, self.thresholds),
            model_version=version,
            variant=variant,
            degraded=bool(reasons),
            reasons=reasons,
            latency_ms=(time.perf_counter() - start) * 1000,
        )
        self.log.record(_record(transaction, features, prediction, "served"))
        if self.shadow is not None:
            self._submit_shadow(self.shadow, transaction, features, prediction)
        return prediction

    def predict_batch(self, transactions: list[Transaction]) -> list[Prediction]:
        """In order: a customer's later transaction in the batch sees the earlier ones."""
        return [self.predict(t) for t in transactions]

    def _submit_shadow(self, shadow: ServedModel, transaction: Transaction, features: dict, served: Prediction) -> None:
        with self._shadow_lock:
            if self._shadow_pending >= self._shadow_backlog:
                self.counters.shadow_dropped += 1
                return
            self._shadow_pending += 1
        self._shadow_pool.submit(self._score_shadow, shadow, transaction, features, served)

    def _score_shadow(self, shadow: ServedModel, transaction: Transaction, features: dict, served: Prediction) -> None:
        start = time.perf_counter()
        try:
            probability = float(shadow.predict(np.array([[features[name] for name in FEATURES]]))[0])
            decision = decide(probability, self.thresholds)
            self.counters.shadow_scored += 1
            self.counters.shadow_disagreements += decision != served.decision
            shadow_prediction = served.model_copy(update={
                "fraud_probability": probability, "decision": decision, "model_version": shadow.version,
                "variant": "shadow", "latency_ms": (time.perf_counter() - start) * 1000})  # fmt: skip
            self.log.record(_record(transaction, features, shadow_prediction, "shadow"))
        except Exception as error:  # the shadow's failures are counted and logged, never served
            self.counters.shadow_failures += 1
            log.warning("shadow model %s failed: %s", shadow.version, error)
        finally:
            with self._shadow_lock:
                self._shadow_pending -= 1

    def _state(self, transaction: Transaction) -> tuple[dict[str, Any], list[str]]:
        from fraud_detection.feature_store import OnlineStoreUnavailable

        try:
            state = self.features.state(transaction.customer_id, transaction.terminal_id)
        except OnlineStoreUnavailable as error:
            return dict(NO_STATE), [f"online store unavailable; features defaulted ({error})"]
        reasons = []
        if state.get(CUSTOMER_DAILY[0]) is None:
            reasons.append("unknown customer; no customer history")
        if state.get(TERMINAL_DAILY[0]) is None:
            reasons.append("unknown terminal; no terminal history")
        return state, reasons

    def _push(self, transaction: Transaction, state: dict[str, Any], tx_us: int, reasons: list[str]) -> None:
        """The customer's intraday state after this transaction, into the online store."""
        from fraud_detection.feature_store import OnlineStoreUnavailable

        if reasons and reasons[0].startswith("online store unavailable"):
            return  # the state read was a default: writing it back would erase the customer's real state
        today = Intraday.from_row(tx_us // MICROS_PER_DAY, {n: state.get(n) for n in CUSTOMER_INTRADAY})
        today.add(tx_us, transaction.tx_amount)
        try:
            self.features.transaction(transaction.customer_id, tx_us, today.row())
        except OnlineStoreUnavailable as error:
            reasons.append(f"online store unwritable; this transaction is not in the customer's state ({error})")


def _record(transaction: Transaction, features: dict[str, Any], prediction: Prediction, role: str) -> dict[str, Any]:
    return {
        "request_id": uuid.uuid4().hex,
        "time": datetime.now(UTC).isoformat(),
        "role": role,
        **transaction.model_dump(mode="json"),
        "features": features,
        **prediction.model_dump(exclude={"transaction_id"}),
    }


class StoreFeatures:
    """The Feast store as the detector's feature source: the feature service's online views, and the updater's
    writer for the intraday state."""

    def __init__(self, store: Any, feature_service: str) -> None:
        from fraud_detection.feature_store import OnlineFeatures, OnlineUpdaterSink

        self._online = OnlineFeatures(store, feature_service)
        self._sink = OnlineUpdaterSink(store)

    def state(self, customer_id: int, terminal_id: int) -> dict[str, Any]:
        return self._online.state(customer_id, terminal_id)

    def transaction(self, customer_id: int, tx_us: int, intraday_row: dict) -> None:
        self._sink.transaction(customer_id, tx_us, intraday_row)
