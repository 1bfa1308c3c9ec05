"""The model an alias or a version points to: the one way serving, batch prediction, the monitor and the promotion
gate load a registered model.

A version is loaded as MLflow serves it (its pyfunc, `registry/pyfunc.py`); the pyfunc holds the `FraudScorer`
(preprocessing + network) that the fast paths call on a float64 matrix, so every caller runs the same weights and
transformation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fraud_detection.registry.registry import ModelRegistry, RegistryError

if TYPE_CHECKING:
    import pandas as pd

    from fraud_detection.models.scorer import FraudScorer, OnFeatures


@dataclass(frozen=True)
class LoadedModel:
    version: int
    tags: dict[str, str]  # the version's lineage (train stage) and gate decision (register stage)
    pyfunc: Any  # mlflow.pyfunc.PyFuncModel: the registered artifact

    @property
    def scorer(self) -> FraudScorer | OnFeatures:
        """Preprocessing + network on a float64 matrix in FEATURES order (no per-call DataFrame checks), also for a
        version trained on an earlier feature set."""
        from fraud_detection.features.definitions import FEATURES
        from fraud_detection.models.scorer import on_features

        return on_features(self.pyfunc.unwrap_python_model().scorer, FEATURES)

    def predict_frame(self, rows: pd.DataFrame) -> np.ndarray:
        """Fraud probabilities through the pyfunc, input checks included: the packaged model as MLflow serves it."""
        from fraud_detection.registry.pyfunc import OUTPUT_COLUMN

        return self.pyfunc.predict(rows)[OUTPUT_COLUMN].to_numpy()


def load_model(registry: ModelRegistry, ref: str | int) -> LoadedModel:
    """The version `ref` names: an alias (`champion`, `challenger`) or a version number (3, "3", "fraud-detector/3").
    Raises RegistryError for an alias that points nowhere or a version the model does not have."""
    import mlflow.pyfunc

    if isinstance(ref, str) and not _is_version(ref):
        number = registry.alias_version(ref)
        if number is None:
            raise RegistryError(f"model {registry.name!r} has no {ref}; expected the register stage to have set it")
        ref = number
    version = registry.version(ref)
    mlflow.set_tracking_uri(registry.tracking_uri)  # this registry's, whichever another one set last
    mlflow.set_registry_uri(registry.tracking_uri)
    pyfunc = mlflow.pyfunc.load_model(f"models:/{registry.name}/{version.version}")
    return LoadedModel(int(version.version), dict(version.tags), pyfunc)


def _is_version(ref: str) -> bool:
    return ref.rsplit("/", 1)[-1].isdigit()
