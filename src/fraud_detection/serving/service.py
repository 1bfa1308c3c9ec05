"""The real-time service: `bentoml serve fraud_detection.serving.service:FraudService` from the project root.

It loads, at start, the models of the A/B variants and of the shadow (registry aliases: `serve.ab.variants`,
`serve.shadow`) through BentoML's model store (imported from `models:/fraud-detector@<alias>` when missing), the
Feast online store of the catalog, and the prediction log; each request goes through `FraudDetector`. A watcher
thread checks the registry's aliases every `serve.reload_interval_s` and swaps in the versions they point to (hot
reload); `POST /admin/reload` forces it, with the admin token (`Authorization: Bearer <token>`, the token in the
environment variable named by `serve.admin_token_env`; no token set: the admin endpoints always answer 401).
The project environment (`conf/<env>`) comes from `FRAUD_DETECTION_ENV` (default: base + local).
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from http import HTTPStatus
from typing import Any

import bentoml
from bentoml.exceptions import BentoMLException

from fraud_detection.ingestion.schema import Limits
from fraud_detection.offline import disable_telemetry
from fraud_detection.serving.schemas import InvalidTransaction, Prediction, Transaction, check_limits

disable_telemetry()


log = logging.getLogger(__name__)


class BadRequest(BentoMLException):
    error_code = HTTPStatus.BAD_REQUEST


class Unauthorized(BentoMLException):
    error_code = HTTPStatus.UNAUTHORIZED


@bentoml.service(name="fraud_detection", workers=1, traffic={"timeout": 10}, http={"host": "127.0.0.1"})
class FraudService:
    def __init__(self) -> None:
        from fraud_detection.project import project_context
        from fraud_detection.serving.decision import FallbackRules, Thresholds
        from fraud_detection.serving.detector import FraudDetector, StoreFeatures
        from fraud_detection.serving.metrics import Exporter
        from fraud_detection.serving.prediction_log import PredictionLog
        from fraud_detection.serving.routing import ABRouter

        context = project_context(os.environ.get("FRAUD_DETECTION_ENV"))
        params, serve = context.params, context.params["serve"]
        registry = context.catalog.load("model_registry").open(params["register"]["model_name"])
        router = ABRouter.from_params(serve["ab"])
        self.registry, self.variants, self.shadow_alias = registry, router.variants, serve.get("shadow")
        models, shadow = self._load_models()
        features = StoreFeatures(context.catalog.load("feature_store"), params["training_set"]["feature_service"])
        self.limits = Limits.from_params(params["ingest"])
        self.max_batch = int(serve["max_batch"])
        self._admin_token = os.environ.get(serve["admin_token_env"], "")
        self.detector = FraudDetector(
            models, features, router, Thresholds.from_params(serve["thresholds"]),
            FallbackRules.from_params(serve["fallback"]),
            PredictionLog(context.catalog.load("prediction_log"), capacity=serve["log_queue"]), shadow,
        )  # fmt: skip
        self._exporter, self._reload_lock, self._stop = Exporter(), threading.Lock(), threading.Event()
        self._watcher = threading.Thread(target=self._watch, args=(float(serve["reload_interval_s"]),), daemon=True)
        self._watcher.start()

    @bentoml.api(route="/predict", input_spec=Transaction, output_spec=Prediction)
    async def predict(self, **fields: Any) -> Prediction:
        prediction = self.detector.predict(self._checked(Transaction.model_construct(**fields)))
        self._exporter.export(self.detector.counters, self.detector.log.dropped)
        return prediction

    @bentoml.api(route="/predict_batch")
    async def predict_batch(self, transactions: list[Transaction]) -> list[Prediction]:
        if len(transactions) > self.max_batch:
            raise BadRequest(f"transactions has {len(transactions)} items; expected at most {self.max_batch} "
                             "(params serve.max_batch)")  # fmt: skip
        for index, transaction in enumerate(transactions):
            try:
                check_limits(transaction, self.limits)
            except InvalidTransaction as error:
                raise BadRequest(f"transactions[{index}]: {error}") from error
        predictions = self.detector.predict_batch(transactions)
        self._exporter.export(self.detector.counters, self.detector.log.dropped)
        return predictions

    @bentoml.api(route="/admin/reload")
    def admin_reload(self, ctx: bentoml.Context) -> dict[str, str]:
        """Swap in the versions the registry's aliases point to now; answers the versions served."""
        supplied = ctx.request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not self._admin_token or not hmac.compare_digest(supplied.encode(), self._admin_token.encode()):
            raise Unauthorized("admin endpoints need `Authorization: Bearer <token>`")
        return self.reload()

    def reload(self) -> dict[str, str]:
        """Load what the aliases point to, if it moved; requests keep being served meanwhile."""
        with self._reload_lock:
            if self._alias_versions() != self._loaded:
                self.detector.swap(*self._load_models())
                log.info("reloaded: now serving %s", self.detector.versions())
            return self.detector.versions()

    def _alias_versions(self) -> dict[str, int | None]:
        aliases = {*self.variants, *([self.shadow_alias] if self.shadow_alias else [])}
        return {alias: self.registry.alias_version(alias) for alias in sorted(aliases)}

    def _load_models(self) -> tuple[dict[str, Any], Any]:
        """The variants' and the shadow's models, as the registry's aliases point now (remembered in `_loaded`)."""
        from fraud_detection.serving.models import served_model

        versions = self._alias_versions()  # read first: an alias moving during the load is caught next time
        models = {variant: served_model(self.registry, variant) for variant in self.variants}
        shadow = served_model(self.registry, self.shadow_alias) if self.shadow_alias else None
        self._loaded = versions  # only once loaded: a failed load is retried
        return models, shadow

    def _watch(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.reload()
            except Exception as error:  # the registry unreachable for a while: keep serving what we have
                log.warning("hot reload check failed: %s", error)

    def _checked(self, transaction: Transaction) -> Transaction:
        try:
            check_limits(transaction, self.limits)
        except InvalidTransaction as error:
            raise BadRequest(str(error)) from error
        return transaction

    def __is_ready__(self) -> bool:
        """Ready when the models are loaded (they are, once constructed) and the online store answers."""
        from fraud_detection.feature_store import OnlineStoreUnavailable

        try:
            self.detector.features.state(0, 0)
        except OnlineStoreUnavailable:
            return False
        return True

    @bentoml.on_shutdown
    def close(self) -> None:
        self._stop.set()
        self.detector.close()
