"""The models the service scores with: what the registry's aliases point to, or the models baked into a Bento."""

from __future__ import annotations

from typing import Any

from fraud_detection.registry.loading import load_model
from fraud_detection.registry.registry import ModelRegistry
from fraud_detection.serving.detector import ServedModel


def served_model(registry: ModelRegistry, alias: str) -> ServedModel:
    """The version `alias` points to, as the scorer inside its pyfunc (preprocessing + network on a float64 matrix,
    without the pyfunc's per-call DataFrame checks)."""
    loaded = load_model(registry, alias)
    return ServedModel(str(loaded.version), loaded.scorer.predict_proba)


def packaged_model(model: Any) -> ServedModel:
    """A model baked into a Bento (`fraud-detection serve build`), for when the registry cannot be reached (on the
    instance, BentoML hands the class's `BentoModel` attribute over as the stored model)."""
    import bentoml

    from fraud_detection.features.definitions import FEATURES
    from fraud_detection.models.scorer import on_features

    stored = model.resolve() if hasattr(model, "resolve") else model
    scorer = on_features(bentoml.mlflow.load_model(stored.tag).unwrap_python_model().scorer, FEATURES)
    return ServedModel(stored.info.labels["registry_version"], scorer.predict_proba)
