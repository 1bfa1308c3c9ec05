"""The models the service scores with: registry aliases, through BentoML's model store."""

from __future__ import annotations

from typing import Any

from fraud_detection.registry.bento import import_alias
from fraud_detection.registry.registry import ModelRegistry
from fraud_detection.serving.detector import ServedModel


def served_model(registry: ModelRegistry, alias: str) -> ServedModel:
    """The version `alias` points to, imported into BentoML's store if missing, loaded as the scorer inside the
    MLflow pyfunc (preprocessing + network on a float64 matrix, without the pyfunc's per-call DataFrame checks)."""
    return _scorer_of(import_alias(registry, alias))


def served_scorer(registry: ModelRegistry, alias: str) -> tuple[str, Any]:
    """The same model as `served_model`, as (registry version, FraudScorer): batch scoring needs the scorer's
    preprocessing too (the investigation queue's drivers)."""
    import bentoml

    stored = import_alias(registry, alias)
    return stored.info.labels["registry_version"], bentoml.mlflow.load_model(stored.tag).unwrap_python_model().scorer


def packaged_model(model: Any) -> ServedModel:
    """A model baked into a Bento, for when the registry cannot be reached (on the instance, BentoML hands the
    class's `BentoModel` attribute over as the stored model)."""
    return _scorer_of(model.resolve() if hasattr(model, "resolve") else model)


def _scorer_of(stored: Any) -> ServedModel:
    import bentoml

    scorer = bentoml.mlflow.load_model(stored.tag).unwrap_python_model().scorer
    return ServedModel(stored.info.labels["registry_version"], scorer.predict_proba)
