"""The detector as the service runs it, assembled from the project's context: `bentoml serve` and
`fraud-detection traffic run --in-process` score through the same parts."""

from __future__ import annotations

from typing import Any

from fraud_detection.serving.decision import FallbackRules
from fraud_detection.serving.detector import FraudDetector, ServedModel
from fraud_detection.serving.online_state import StoreFeatures
from fraud_detection.serving.prediction_log import PredictionLog
from fraud_detection.serving.routing import ABRouter


def build_detector(context: Any, models: dict[str, ServedModel], shadow: ServedModel | None) -> FraudDetector:
    """A detector on the catalog's online store and prediction log, with params.yaml `serve`'s settings."""
    params, serve = context.params, context.params.serve
    features = StoreFeatures(
        context.catalog.load("feature_store"), context.catalog.load("feature_store"),
        params.training_set.feature_service, serve.state_write_interval_ms / 1000, serve.daily_cache_entries,
    )  # fmt: skip
    return FraudDetector(
        models, features, ABRouter.from_params(serve.ab), serve.thresholds,
        FallbackRules.of(serve.fallback, params.simulate.fraud.amount_threshold),
        PredictionLog(context.catalog.load("prediction_log"), capacity=serve.log_queue), shadow,
        shadow_backlog=serve.shadow_backlog,
    )  # fmt: skip


def registry_models(context: Any) -> tuple[dict[str, ServedModel], ServedModel | None]:
    """The models `serve.ab`'s variants and `serve.shadow` name, as the registry's aliases point now."""
    from fraud_detection.serving.models import served_model

    serve = context.params.serve
    registry = context.catalog.load("model_registry").open(context.params.register.model_name)
    models = {variant: served_model(registry, variant) for variant in ABRouter.from_params(serve.ab).variants}
    return models, served_model(registry, serve.shadow) if serve.shadow else None
