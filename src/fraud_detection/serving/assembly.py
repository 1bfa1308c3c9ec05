"""The detector as the service runs it, assembled from the project's context: `bentoml serve` and
`fraud-detection traffic run --in-process` score through the same parts, and follow the same serving plan: the
running experiment's in the registry (a rollout's shares and shadow), else params.yaml `serve.ab` and `serve.shadow`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fraud_detection.registry.registry import RUNNING, ModelRegistry
from fraud_detection.serving.decision import FallbackRules
from fraud_detection.serving.detector import FraudDetector, ServedModel
from fraud_detection.serving.online_state import StoreFeatures
from fraud_detection.serving.params import ABParams, ServeParams
from fraud_detection.serving.prediction_log import PredictionLog
from fraud_detection.serving.routing import ABRouter


@dataclass(frozen=True)
class ServingPlan:
    """What serves: the A/B router (salt, variants' shares), the shadow's alias, and the versions their aliases
    pointed to when the plan was read (a plan that differs from the one loaded is a reload)."""

    router: ABRouter
    shadow: str | None
    versions: dict[str, int | None]


def serving_plan(registry: ModelRegistry, serve: ServeParams) -> ServingPlan:
    """The running experiment's plan (its salt, shares and shadow: a rollout's or a split's), else params.yaml
    `serve.ab` and `serve.shadow`. A variant is a registry alias or a version number."""
    ab, shadow = serve.ab, serve.shadow
    experiment = registry.experiment()
    if experiment and experiment["status"] == RUNNING:
        ab, shadow = ABParams(salt=experiment["salt"], variants=experiment["variants"]), experiment["shadow"]
    router = ABRouter.from_params(ab)
    aliases = sorted({*router.variants, *([shadow] if shadow else [])})
    return ServingPlan(
        router, shadow, {ref: int(ref) if ref.isdigit() else registry.alias_version(ref) for ref in aliases}
    )


def plan_models(registry: ModelRegistry, plan: ServingPlan) -> tuple[dict[str, ServedModel], ServedModel | None]:
    """The variants' and the shadow's models as the plan's aliases point now."""
    from fraud_detection.serving.models import served_model

    models = {variant: served_model(registry, variant) for variant in plan.router.variants}
    return models, served_model(registry, plan.shadow) if plan.shadow else None


def build_detector(
    context: Any, models: dict[str, ServedModel], shadow: ServedModel | None, router: ABRouter | None = None
) -> FraudDetector:
    """A detector on the catalog's online store and prediction log, with params.yaml `serve`'s settings (its
    router `serve.ab`'s unless given)."""
    params, serve = context.params, context.params.serve
    features = StoreFeatures(
        context.catalog.load("feature_store"), context.catalog.load("feature_store"),
        params.training_set.feature_service, serve.state_write_interval_ms / 1000, serve.daily_cache_entries,
    )  # fmt: skip
    return FraudDetector(
        models, features, router or ABRouter.from_params(serve.ab), serve.thresholds,
        FallbackRules.of(serve.fallback, params.simulate.fraud.amount_threshold),
        PredictionLog(context.catalog.load("prediction_log"), capacity=serve.log_queue), shadow,
        shadow_backlog=serve.shadow_backlog,
    )  # fmt: skip


class FollowingDetector:
    """A detector in this process that follows the registry's serving plan (`traffic run --in-process`): `follow`
    swaps in what the plan says now, as the service's reload watcher does."""

    def __init__(self, context: Any) -> None:
        serve = context.params.serve
        self.registry = context.catalog.load("model_registry").open(context.params.register.model_name)
        self.serve, self.plan = serve, serving_plan(self.registry, serve)
        self.detector = build_detector(context, *plan_models(self.registry, self.plan), self.plan.router)

    def follow(self) -> bool:
        """Swap in the plan's models if the plan changed; whether it did."""
        plan = serving_plan(self.registry, self.serve)
        if plan == self.plan:
            return False
        self.detector.swap(*plan_models(self.registry, plan), plan.router)
        self.plan = plan
        return True
