"""The real-time service: `bentoml serve fraud_detection.serving.service:FraudService` from the project root.

Endpoints: `POST /predict` (one transaction), `POST /predict_batch` (a list, adaptively batched across requests),
`GET /risk/{customer_id}` (the per-card risk table the batch_predict stage publishes), `POST /admin/reload` (token),
`/readyz`, `/livez`, `/metrics`, and `GET /docs.json`: the OpenAPI document of all of them (serving/openapi.py).

At start each worker loads the models of the A/B variants and of the shadow (registry aliases: those of the
running experiment in the registry, a rollout's; else `serve.ab.variants` and `serve.shadow`) from the registry
(`registry.loading.load_model`; in a Bento, the models baked in at build time when the registry cannot be
reached), the Feast online store of the catalog, and the prediction log; each request goes through
`FraudDetector`. A watcher thread reads the serving plan (the experiment's shares and shadow, the aliases'
versions) every `serve.reload_interval_s` and swaps in what it says, shares included, without a restart (hot
reload); `POST /admin/reload` forces it, with the admin token (`Authorization: Bearer <token>`, the token in the
environment variable named by `serve.admin_token_env`; no token set: the admin endpoints always answer 401).
The project environment (`conf/<env>`) comes from `FRAUD_DETECTION_ENV` (default: base + local).

BentoML fixes a service's server settings and API schemas when the class is defined, so this module reads
params.yaml (`serve`, `ingest`) once when BentoML imports it. What keeps the tail short (docs/serving.md):
BentoML's request timeout is short (`serve.request_timeout_s`: its timer holds every request's objects
until it fires), OpenTelemetry's SDK is off unless configured (`OTEL_SDK_DISABLED`), the access log is off (the
prediction log records every request), and each worker freezes its start-up objects out of the garbage collector
and collects its youngest generation less often (`serve.gc_threshold`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
from typing import Annotated, Any

import bentoml
from bentoml.validators import ContentType
from pydantic import BaseModel, Field, PlainSerializer

from fraud_detection.ingestion.schema import Limits
from fraud_detection.runtime.collector import serving_collector
from fraud_detection.runtime.project import project_params
from fraud_detection.runtime.telemetry import disable_telemetry
from fraud_detection.serving.http import ADMIN_REFUSED, admin_authorized, edge
from fraud_detection.serving.metrics import observe
from fraud_detection.serving.schemas import PREDICTIONS, Prediction, with_limits

disable_telemetry()
os.environ.setdefault("OTEL_SDK_DISABLED", "true")  # BentoML's tracing middleware: ~0.3 ms a request when on
log = logging.getLogger(__name__)

PARAMS = project_params(os.environ.get("FRAUD_DETECTION_ENV"))
SERVE = PARAMS.serve
CheckedTransaction = with_limits(Limits.from_params(PARAMS.ingest))
# A batch's answer, serialized by pydantic-core in one call: BentoML renders a string as the body as it is, where
# it would dump each prediction to a dict and then `json.dumps` the list (~7 ms against 0.5 ms for 1,000). The
# declared content type spares BentoML deriving it from the JSON schema on every response.
PredictionsJson = Annotated[
    list[Prediction],
    PlainSerializer(lambda predictions: PREDICTIONS.dump_json(predictions).decode(), return_type=str),
    ContentType("application/json"),
]


class PackagedModels(BaseModel):
    """`bentoml build --arg champion=fraud-detector:v3`: the BentoML models a Bento carries, by registry alias
    (`fraud-detection serve build` sets them)."""

    champion: str | None = None
    challenger: str | None = None


PACKAGED = bentoml.use_arguments(PackagedModels)


def _instance() -> Any:
    return bentoml.get_current_service()


@bentoml.service(
    name="fraud-detection-service",  # not a module name: `bentoml serve <bento tag>` must not resolve to the package
    workers=SERVE.workers,
    traffic={"timeout": SERVE.request_timeout_s},
    logging={"access": {"enabled": SERVE.access_log}},
    metrics={"enabled": False},  # ours are cheaper (serving/metrics.py) and `GET /metrics` serves them
    tracing={"excluded_urls": [] if SERVE.tracing else [".*"]},  # ~0.25 ms a request, even with a no-op tracer
    http={"host": "127.0.0.1"},
)
class FraudService:
    packaged_champion = bentoml.models.BentoModel(PACKAGED.champion) if PACKAGED.champion else None
    packaged_challenger = bentoml.models.BentoModel(PACKAGED.challenger) if PACKAGED.challenger else None

    def __init__(self) -> None:
        from threadpoolctl import threadpool_limits

        from fraud_detection.runtime.project import project_context
        from fraud_detection.serving.assembly import build_detector
        from fraud_detection.serving.metrics import Exporter

        threadpool_limits(1)  # one BLAS thread a worker: the workers are the parallelism (idle BLAS threads spin)
        context = project_context(os.environ.get("FRAUD_DETECTION_ENV"))
        params, serve = context.params, context.params.serve
        self._address, self._model_name = context.catalog.load("model_registry"), params.register.model_name
        self._serve = serve
        self.admin_token = os.environ.get(serve.admin_token_env, "")  # checked by the edge, then admin_reload
        self.risk_store = context.catalog.load("risk_store")  # the batch stage's per-card risk table
        models, shadow = self._load_models()
        self.detector = build_detector(context, models, shadow, self._loaded.router)
        self._exporter, self._reload_lock, self._stop = Exporter(), threading.Lock(), threading.Event()
        for action, every in ((self.reload, serve.reload_interval_s), (self._export, serve.metrics_interval_s)):
            threading.Thread(target=self._every, args=(every, action), daemon=True).start()
        serving_collector(serve.gc_threshold)

    @bentoml.api(
        route="/predict_batch",
        batchable=True,
        max_batch_size=SERVE.max_batch,
        max_latency_ms=SERVE.batch_max_latency_ms,
    )
    async def predict_batch(
        self, transactions: Annotated[list[CheckedTransaction], Field(max_length=SERVE.max_batch)]
    ) -> PredictionsJson:
        """Transactions of one or more requests (BentoML merges concurrent requests into one call)."""
        start = time.perf_counter()
        predictions = self.detector.predict_batch(transactions)
        observe("/predict_batch", 200, time.perf_counter() - start)
        return predictions

    @bentoml.api(route="/admin/reload")
    def admin_reload(self, ctx: bentoml.Context) -> dict[str, str]:
        """Swap in the versions the registry's aliases point to now; answers the versions served."""
        if not admin_authorized(ctx.request.headers.get("authorization", ""), self.admin_token):
            ctx.response.status_code = 401  # the edge refused it already (before the body): this is the backstop
            return {"error": ADMIN_REFUSED}
        return self.reload()

    def reload(self) -> dict[str, str]:
        """Load what the serving plan says, if it changed; requests keep being served meanwhile."""
        from fraud_detection.serving.assembly import serving_plan

        with self._reload_lock:
            if serving_plan(self.registry, self._serve) != self._loaded:
                models, shadow = self._load_models()
                self.detector.swap(models, shadow, self._loaded.router)
                log.info("reloaded: now serving %s", self.detector.versions())
            return self.detector.versions()

    @property
    def registry(self) -> Any:
        """The model registry, opened on first use (and again while it cannot be reached)."""
        if getattr(self, "_registry", None) is None:
            self._registry = self._address.open(self._model_name)
        return self._registry

    def _load_models(self) -> tuple[dict[str, Any], Any]:
        """The models of the serving plan as it reads now (remembered in `_loaded`). A registry that cannot be
        reached at start leaves the models baked into the Bento, if any, routed by params.yaml `serve`."""
        from fraud_detection.registry.registry import RegistryUnreachable
        from fraud_detection.serving.assembly import ServingPlan, plan_models, serving_plan
        from fraud_detection.serving.models import packaged_model
        from fraud_detection.serving.routing import ABRouter

        try:
            plan = serving_plan(self.registry, self._serve)  # read first: a change during the load is caught next
            models, shadow = plan_models(self.registry, plan)
        except RegistryUnreachable:
            plan = ServingPlan(ABRouter.from_params(self._serve.ab), self._serve.shadow, {})
            packaged = {alias: getattr(self, f"packaged_{alias}") for alias in PackagedModels.model_fields}
            if getattr(self, "_loaded", None) is not None or not all(packaged.get(v) for v in plan.router.variants):
                raise
            log.warning("registry unreachable: serving the models packaged in this Bento %s", packaged)
            models = {variant: packaged_model(packaged[variant]) for variant in plan.router.variants}
            shadow = packaged_model(packaged[plan.shadow]) if packaged.get(plan.shadow) else None
        self._loaded = plan  # only once loaded: a failed load is retried
        return models, shadow

    def _export(self) -> None:
        """This worker's counters into Prometheus's shared files (`/metrics` of any worker reads them all)."""
        detector = self.detector
        self._exporter.export(detector.counters, detector.log.dropped, detector.features.write_failures)

    def _every(self, interval_s: float, action: Any) -> None:
        while not self._stop.wait(interval_s):
            try:
                action()
            except Exception as error:  # the registry unreachable for a while: keep serving what we have
                log.warning("%s failed: %s", action.__name__, error)

    def __is_ready__(self) -> bool:
        """Ready when the models are loaded (they are, once constructed) and the online store answers."""
        from fraud_detection.feature_store.online import OnlineStoreUnavailable

        try:
            self.detector.features.state(0, 0)
        except OnlineStoreUnavailable:
            return False
        return True

    @bentoml.on_shutdown
    def close(self) -> None:
        self._stop.set()
        self.detector.close()
        self.risk_store.close()


@functools.cache
def openapi_json() -> bytes:
    """The OpenAPI document of every route the service answers, as served at `/docs.json`."""
    from importlib.metadata import version

    from fraud_detection.serving.openapi import openapi_document

    document = openapi_document(
        title=FraudService.name,
        version=version("fraud-detection"),
        transaction=CheckedTransaction,
        batch_input=FraudService.apis["predict_batch"].input_spec,
        admin_input=FraudService.apis["admin_reload"].input_spec,
        admin_token_env=SERVE.admin_token_env,
    )
    return json.dumps(document).encode()


API_ROUTES = [api.route for api in FraudService.apis.values()]
FraudService.add_asgi_middleware(edge(CheckedTransaction, _instance, SERVE.max_body_bytes, openapi_json, API_ROUTES))
