"""Transactions in, decisions out: the request path of the real-time service, free of any web framework (the
BentoML service is a thin shell around it, and tests call it in-process).

For a transaction: assign the customer's A/B variant; read the stored state of the feature service's views from
the online store and apply the one feature definition; score with the variant's model; decide from
`serve.thresholds`; log; then record the customer's new intraday state (written to the online store behind the
response) so that the next transaction sees this one. A batch does the same with one store call per view, one
feature evaluation and one model call per variant; a customer's later transaction in a batch sees the earlier ones.

Faults degrade instead of failing: an online store that cannot be read gives the documented defaults (no history),
an unknown customer or terminal is flagged, a model that fails to score (or returns a non-finite score) is replaced
by the rule fallback. Each sets `degraded: true` with its reason and is counted. Where the features were defaulted,
the rules are a floor under the model's score (`decision.py`).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

import numpy as np

from fraud_detection.feature_store.online import OnlineStoreUnavailable
from fraud_detection.features.definitions import (
    CUSTOMER_DAILY,
    CUSTOMER_INTRADAY,
    FEATURES,
    MICROS_PER_DAY,
    NUMBER_STATE,
    TERMINAL_DAILY,
    TERMINAL_LISTS,
    epoch_micros,
    features_of_one,
    transaction_features,
)
from fraud_detection.features.online import Intraday
from fraud_detection.serving.decision import NO_RULE, RULES_VERSION, FallbackRules, decide, rule_score
from fraud_detection.serving.params import Thresholds
from fraud_detection.serving.prediction_log import PredictionLog
from fraud_detection.serving.routing import ABRouter
from fraud_detection.serving.schemas import PREDICTIONS, Prediction, Transaction

log = logging.getLogger(__name__)
NO_CUSTOMER, NO_INTRADAY, NO_TERMINAL = (dict.fromkeys(n) for n in (CUSTOMER_DAILY, CUSTOMER_INTRADAY, TERMINAL_DAILY))
TERMINAL_NUMBERS = tuple(name for name in TERMINAL_DAILY if name in NUMBER_STATE)
STORE_DOWN = "online store unavailable"
UNKNOWN_CUSTOMER = "unknown customer; no customer history"
UNKNOWN_TERMINAL = "unknown terminal; no terminal history"
UNWRITABLE = "online store unwritable; recent state held in this process until it is back"
RULE_FLOOR = "rule floor"
DEFAULTED = (STORE_DOWN, UNKNOWN_CUSTOMER, UNKNOWN_TERMINAL)  # reasons whose features are (partly) defaults


@dataclass(frozen=True)
class ServedModel:
    """A registry version ready to score: `predict` takes a (rows, features) float64 matrix in `FEATURES` order."""

    version: str
    predict: Callable[[np.ndarray], np.ndarray]


class FeatureSource(Protocol):
    """What the detector needs of the feature store (`online_state.StoreFeatures` on Feast's online store)."""

    def state(self, customer_id: int, terminal_id: int) -> dict[str, Any]: ...

    def states(self, customer_ids: Sequence[int], terminal_ids: Sequence[int]) -> tuple[list, list, list]: ...

    def record(self, intraday_rows: dict[int, dict]) -> None: ...  # customer -> its new intraday row

    @property
    def writable(self) -> bool: ...  # False while recorded state cannot be written to the store

    @property
    def write_failures(self) -> int: ...

    def close(self) -> None: ...


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


class _Serving(NamedTuple):
    models: dict[str, ServedModel]
    shadow: ServedModel | None
    router: ABRouter


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
        shadow_backlog: int = 10_000,
    ) -> None:
        self.features, self._serving = features, _Serving({}, None, router)
        self.thresholds, self.rules, self.log = thresholds, rules, prediction_log
        self.counters = Counters()
        self.swap(models, shadow)
        # The shadow scores on its own thread, after the response is built: its latency and failures never reach it
        self._shadow_pool = ThreadPoolExecutor(1, thread_name_prefix="shadow")
        self._shadow_backlog, self._shadow_pending, self._shadow_lock = shadow_backlog, 0, threading.Lock()

    def swap(self, models: dict[str, ServedModel], shadow: ServedModel | None, router: ABRouter | None = None) -> None:
        """Serve other models (and route by `router`, if given) from the next request on (hot reload); requests in
        flight finish on the old ones."""
        router = router or self.router
        missing = sorted(set(router.variants) - set(models))
        if missing:
            raise ValueError(f"serve.ab names variants {missing} without a model; expected one of {sorted(models)}")
        self._serving = _Serving(dict(models), shadow, router)  # one assignment: a request reads all three or none

    @property
    def models(self) -> dict[str, ServedModel]:
        return self._serving.models

    @property
    def shadow(self) -> ServedModel | None:
        return self._serving.shadow

    @property
    def router(self) -> ABRouter:
        return self._serving.router

    def versions(self) -> dict[str, str]:
        served = {variant: model.version for variant, model in self.models.items()}
        return served | ({"shadow": self.shadow.version} if self.shadow else {})

    def flush(self) -> None:
        """Return once every answer so far is in the prediction log (the shadow's scored first)."""
        self._shadow_pool.submit(lambda: None).result()  # one thread: the backlog before it is done
        self.log.flush()

    def close(self) -> None:
        """Finish the shadow's backlog, write the pending online state, then flush the log."""
        self._shadow_pool.shutdown(wait=True)
        self.features.close()
        self.log.close()

    def predict(self, transaction: Transaction) -> Prediction:
        start = time.perf_counter()
        models, shadow, router = self._serving  # what serves this request, whatever a reload swaps meanwhile
        variant = router.variant(transaction.customer_id)
        tx_us = epoch_micros(transaction.tx_datetime)
        state, reasons = self._state(transaction)
        features = features_of_one(state, tx_us, transaction.tx_amount)
        vector = np.array([[features[name] for name in FEATURES]])
        scores, versions = self._score(models[variant], vector, [features], [reasons])
        if not _store_down(reasons):  # a defaulted state written back would erase the real one
            today = Intraday.from_row(tx_us // MICROS_PER_DAY, state)
            today.add(tx_us, transaction.tx_amount)
            self.features.record({transaction.customer_id: today.row()})
        answers = self._answers([transaction], scores, versions, [variant], [reasons], start)
        self._count([variant], [reasons])
        records = _records([transaction], [features], answers, "served")
        self.log.record_many(records)
        if shadow is not None:
            self._submit_shadow(shadow, vector, records)
        return Prediction.model_validate(answers[0])

    def predict_batch(self, transactions: Sequence[Transaction]) -> list[Prediction]:
        """In time order per customer (stable): a customer's later transaction sees the earlier ones."""
        start = time.perf_counter()
        if not transactions:
            return []
        models, shadow, router = self._serving  # what serves this batch, whatever a reload swaps meanwhile
        order = sorted(range(len(transactions)), key=lambda i: transactions[i].tx_datetime)
        batch = [transactions[i] for i in order]
        tx_us = [epoch_micros(t.tx_datetime) for t in batch]
        customer, intraday, terminal, reasons = self._states(batch)
        before = self._intraday_before(batch, tx_us, intraday, record=not _store_down(reasons[0]))
        columns = _state_columns(customer, before, terminal)
        matrix = _matrix(transaction_features(columns, tx_us, [t.tx_amount for t in batch]))
        features = [dict(zip(FEATURES, row, strict=True)) for row in matrix.tolist()]
        variants = [router.variant(t.customer_id) for t in batch]
        scores, versions = [0.0] * len(batch), [""] * len(batch)
        for variant in set(variants):
            rows = [i for i, v in enumerate(variants) if v == variant]
            picked = [features[i] for i in rows], [reasons[i] for i in rows]
            for i, score, version in zip(rows, *self._score(models[variant], matrix[rows], *picked), strict=True):
                scores[i], versions[i] = score, version
        answers = self._answers(batch, scores, versions, variants, reasons, start)
        self._count(variants, reasons)
        records = _records(batch, features, answers, "served")
        self.log.record_many(records)
        if shadow is not None:
            self._submit_shadow(shadow, matrix, records)
        in_request_order: list[dict] = [answers[0]] * len(batch)
        for position, original in enumerate(order):
            in_request_order[original] = answers[position]
        return PREDICTIONS.validate_python(in_request_order)

    def _state(self, transaction: Transaction) -> tuple[dict[str, Any], list[str]]:
        try:
            state = self.features.state(transaction.customer_id, transaction.terminal_id)
        except OnlineStoreUnavailable as error:
            return NO_CUSTOMER | NO_INTRADAY | NO_TERMINAL, [f"{STORE_DOWN}; features defaulted ({error})"]
        return state, self._flags(state, state)

    def _states(self, batch: list[Transaction]) -> tuple[list, list, list, list[list[str]]]:
        try:
            customer, intraday, terminal = self.features.states([t.customer_id for t in batch],
                                                                [t.terminal_id for t in batch])  # fmt: skip
        except OnlineStoreUnavailable as error:
            n = len(batch)
            why = [[f"{STORE_DOWN}; features defaulted ({error})"] for _ in range(n)]
            return [NO_CUSTOMER] * n, [NO_INTRADAY] * n, [NO_TERMINAL] * n, why
        return customer, intraday, terminal, [self._flags(c, k) for c, k in zip(customer, terminal, strict=True)]

    def _flags(self, customer: dict, terminal: dict) -> list[str]:
        """Why a readable state is still degraded: unknown entities, or the store refusing our writes."""
        reasons = []
        if customer[CUSTOMER_DAILY[0]] is None:
            reasons.append(UNKNOWN_CUSTOMER)
        if terminal[TERMINAL_DAILY[0]] is None:
            reasons.append(UNKNOWN_TERMINAL)
        if not self.features.writable:
            reasons.append(UNWRITABLE)
        return reasons

    def _intraday_before(
        self, batch: list[Transaction], tx_us: list[int], stored: list[dict], record: bool
    ) -> dict[str, Sequence]:
        """Each transaction's intraday state as it was just before it (earlier ones of the batch included), as
        columns (`CUSTOMER_INTRADAY`)."""
        running: dict[int, Intraday] = {}
        before: list[tuple] = []
        for transaction, moment, row in zip(batch, tx_us, stored, strict=True):
            day = moment // MICROS_PER_DAY
            today = running.get(transaction.customer_id)
            if today is None or today.day != day:
                today = running[transaction.customer_id] = Intraday.from_row(day, row)
            before.append(today.values())
            today.add(moment, transaction.tx_amount)
        if record:
            self.features.record({customer: today.row() for customer, today in running.items()})
        return dict(zip(CUSTOMER_INTRADAY, zip(*before, strict=True), strict=True))

    def _score(
        self, model: ServedModel, matrix: np.ndarray, features: list[dict], reasons: list[list[str]]
    ) -> tuple[list[float], list[str]]:
        """(probabilities, versions) of the rows; rows the model cannot score get the rule fallback, rows whose features
        were defaulted the rules as a floor."""
        try:
            probabilities = np.asarray(model.predict(matrix), dtype=np.float64)
            if probabilities.shape != (len(matrix),):
                raise ValueError(f"the model returned shape {probabilities.shape}; expected ({len(matrix)},)")
        except Exception as error:  # any model failure: the rules answer instead
            log.warning("model %s failed to score %d transactions: %s", model.version, len(matrix), error)
            probabilities = np.full(len(matrix), np.nan)
        scores, versions = probabilities.tolist(), [model.version] * len(matrix)
        for i in np.flatnonzero(~np.isfinite(probabilities)).tolist():
            reasons[i].append(f"model {model.version} failed to score; rule fallback")
            scores[i], versions[i] = rule_score(features[i], self.rules), RULES_VERSION
            self.counters.fallbacks += 1
        for i, why in enumerate(reasons):
            floor = self._rule_floor(scores[i], features[i], why) if why and versions[i] != RULES_VERSION else None
            if floor is not None:
                why.append(f"{RULE_FLOOR}; features defaulted: the rules' {floor:g} over the model's "
                           f"{scores[i]:.2g}")  # fmt: skip
                scores[i] = floor
        return scores, versions

    def _rule_floor(self, score: float, features: dict, reasons: list[str]) -> float | None:
        """The rules' score where the features were defaulted and a rule flags the transaction above `score`."""
        if not _defaulted(reasons):
            return None
        floor = rule_score(features, self.rules)
        return floor if floor > max(score, NO_RULE) else None

    def _answers(
        self, batch: list[Transaction], scores: list[float], versions: list[str], variants: list[str],
        reasons: list[list[str]], start: float,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """The response fields of each transaction (a `Prediction` each); the latency is the batch's."""
        latency_ms, thresholds = (time.perf_counter() - start) * 1000, self.thresholds
        return [
            {"transaction_id": t.transaction_id, "fraud_probability": score, "decision": decide(score, thresholds),
             "model_version": version, "variant": variant, "degraded": bool(why), "reasons": why,
             "latency_ms": latency_ms}
            for t, score, version, variant, why in zip(batch, scores, versions, variants, reasons, strict=True)
        ]  # fmt: skip

    def _count(self, variants: list[str], reasons: list[list[str]]) -> None:
        self.counters.requests.update(variants)
        for why in reasons:
            for reason in why:
                self.counters.degraded[reason.split(";")[0]] += 1

    def _submit_shadow(self, shadow: ServedModel, matrix: np.ndarray, served: list[dict]) -> None:
        with self._shadow_lock:
            if self._shadow_pending + len(served) > self._shadow_backlog:
                self.counters.shadow_dropped += len(served)
                return
            self._shadow_pending += len(served)
        self._shadow_pool.submit(self._score_shadow, shadow, matrix, served)

    def _score_shadow(self, shadow: ServedModel, matrix: np.ndarray, served: list[dict]) -> None:
        """Score the served transactions' vectors again and log them as the shadow's (the served records with the
        shadow's score, decision, version and latency)."""
        start = time.perf_counter()
        try:
            probabilities = np.asarray(shadow.predict(matrix), dtype=np.float64).tolist()
            if len(probabilities) != len(served):
                raise ValueError(f"the shadow returned {len(probabilities)} scores; expected {len(served)}")
            latency_ms, now, thresholds = (time.perf_counter() - start) * 1000 / len(served), _now(), self.thresholds
            records, disagreements = [], 0
            for record, scored in zip(served, probabilities, strict=True):
                # the served answer's rule floor applies to the shadow too, so that both are compared like for like
                floor = self._rule_floor(scored, record["features"], record["reasons"]) if record["reasons"] else None
                probability = scored if floor is None else floor
                decision = decide(probability, thresholds)
                disagreements += decision != record["decision"]
                records.append(record | {"request_id": _request_id(), "time": now, "role": "shadow",
                                         "fraud_probability": probability, "decision": decision,
                                         "model_version": shadow.version, "variant": "shadow",
                                         "latency_ms": latency_ms})  # fmt: skip
            self.counters.shadow_scored += len(records)
            self.counters.shadow_disagreements += disagreements
            self.log.record_many(records)
        except Exception as error:  # the shadow's failures are counted and logged, never served
            self.counters.shadow_failures += len(served)
            log.warning("shadow model %s failed: %s", shadow.version, error)
        finally:
            with self._shadow_lock:
                self._shadow_pending -= len(served)


def _store_down(reasons: list[str]) -> bool:
    return bool(reasons) and reasons[0].startswith(STORE_DOWN)


def _defaulted(reasons: list[str]) -> bool:
    return bool(reasons) and reasons[0].startswith(DEFAULTED)


def _state_columns(customer: list[dict], intraday: dict[str, Sequence], terminal: list[dict]) -> dict[str, Any]:
    """One float64 array per number column of the state (NaN where unknown), one list per row for the lists."""
    daily = ((CUSTOMER_DAILY, customer), (TERMINAL_NUMBERS, terminal))
    columns = {name: np.array([r[name] for r in rows], dtype=np.float64) for names, rows in daily for name in names}
    lists = {name: [r[name] for r in terminal] for name in TERMINAL_LISTS}
    return columns | lists | {name: np.array(values, dtype=np.float64) for name, values in intraday.items()}


def _matrix(columns: dict[str, np.ndarray]) -> np.ndarray:
    return np.column_stack([np.asarray(columns[name], dtype=np.float64) for name in FEATURES])


_REQUEST_IDS = itertools.count()
_PROCESS = uuid.uuid4().hex[:12]


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _request_id() -> str:
    """Unique per process start and counter."""
    return f"{_PROCESS}-{next(_REQUEST_IDS)}"


def _records(
    batch: list[Transaction], features: list[dict[str, Any]], answers: list[dict[str, Any]], role: str
) -> list[dict[str, Any]]:
    """The prediction log records of answered transactions (see prediction_log), logged at one time."""
    now = _now()
    return [
        {"request_id": _request_id(), "time": now, "role": role, "transaction_id": t.transaction_id,
         "tx_datetime": t.tx_datetime.isoformat(), "customer_id": t.customer_id, "terminal_id": t.terminal_id,
         "tx_amount": t.tx_amount, "features": vector, "fraud_probability": a["fraud_probability"],
         "decision": a["decision"], "model_version": a["model_version"], "variant": a["variant"],
         "degraded": a["degraded"], "reasons": a["reasons"], "latency_ms": a["latency_ms"]}
        for t, vector, a in zip(batch, features, answers, strict=True)
    ]  # fmt: skip
