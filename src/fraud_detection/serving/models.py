"""The models the service scores with: registry aliases, through BentoML's model store."""

from __future__ import annotations

from fraud_detection.registry.bento import import_alias
from fraud_detection.registry.registry import ModelRegistry
from fraud_detection.serving.detector import ServedModel


def served_model(registry: ModelRegistry, alias: str) -> ServedModel:
    """The version `alias` points to, imported into BentoML's store if missing, loaded as the scorer inside the
    MLflow pyfunc (preprocessing + network on a float64 matrix, without the pyfunc's per-call DataFrame checks)."""
    import bentoml

    stored = import_alias(registry, alias)
    scorer = bentoml.mlflow.load_model(stored.tag).unwrap_python_model().scorer
    return ServedModel(stored.info.labels["registry_version"], scorer.predict_proba)
