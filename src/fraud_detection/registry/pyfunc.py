"""The model as MLflow sees it: one pyfunc whose artifact is the saved `FraudScorer` (preprocessing, network, trees),
so `mlflow.pyfunc.load_model`, BentoML and batch scoring all run the same transformation and weights."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from fraud_detection.models.scorer import FraudScorer

SCORER_ARTIFACT = "scorer"
OUTPUT_COLUMN = "fraud_probability"
# Explicit requirements: MLflow would otherwise load the model in a subprocess to infer them (seconds per log).
# Scoring needs no torch: the scorer loads its numpy layers (models/scorer.py).
RUNTIME_PACKAGES = ("mlflow", "lightgbm", "numpy", "pandas")


def pip_requirements() -> list[str]:
    """The scoring path's packages, pinned to this environment's versions (the project package provides the code)."""
    return [f"{name}=={version(name)}" for name in RUNTIME_PACKAGES]


class FraudModel(mlflow.pyfunc.PythonModel):
    """Input: a DataFrame with the model's features (any column order); output: `fraud_probability` per row."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        self.scorer = FraudScorer.load(Path(context.artifacts[SCORER_ARTIFACT]))

    def predict(
        self, context: mlflow.pyfunc.PythonModelContext, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        missing = [name for name in self.scorer.features if name not in model_input.columns]
        if missing:
            raise ValueError(f"model input lacks features {missing}; expected columns {list(self.scorer.features)}")
        matrix = model_input[list(self.scorer.features)].to_numpy(dtype=np.float64)
        return pd.DataFrame({OUTPUT_COLUMN: self.scorer.predict_proba(matrix)}, index=model_input.index)

    @staticmethod
    def output_example(rows: int) -> pd.DataFrame:
        """The output's shape, for the signature."""
        return pd.DataFrame({OUTPUT_COLUMN: np.zeros(rows, dtype=np.float64)})
