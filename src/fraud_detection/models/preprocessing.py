"""Preprocessing fitted on training data only and stored with the model, so that every scoring path (batch,
real-time, online learning) applies exactly the same transformation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Standardizer:
    """Feature order, then log1p of the heavy-tailed non-negative features, then centring and scaling."""

    features: tuple[str, ...]
    log_features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]

    @classmethod
    def fit(cls, matrix: np.ndarray, features: tuple[str, ...], log_features: tuple[str, ...]) -> Standardizer:
        """Fit on the training rows (`matrix` columns in `features` order)."""
        if matrix.ndim != 2 or matrix.shape[1] != len(features):
            raise ValueError(f"matrix has shape {matrix.shape}; expected (rows, {len(features)}) for {features}")
        if not np.isfinite(matrix).all():
            column = features[int(np.argwhere(~np.isfinite(matrix))[0, 1])]
            raise ValueError(f"feature {column} has NaN or infinite values in the training data; expected finite")
        logged = _log(matrix, features, log_features)
        scale = logged.std(axis=0)
        return cls(features, log_features, tuple(logged.mean(axis=0)), tuple(np.where(scale > 0, scale, 1.0)))

    def transform(self, matrix: np.ndarray) -> np.ndarray:
        """The model's input (float32), columns in `features` order."""
        logged = _log(np.asarray(matrix, dtype=np.float64), self.features, self.log_features)
        return ((logged - np.asarray(self.mean)) / np.asarray(self.scale)).astype(np.float32)

    def to_dict(self) -> dict:
        return {"features": list(self.features), "log_features": list(self.log_features),
                "mean": list(self.mean), "scale": list(self.scale)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict) -> Standardizer:
        return cls(*(tuple(data[k]) for k in ("features", "log_features", "mean", "scale")))


def _log(matrix: np.ndarray, features: tuple[str, ...], log_features: tuple[str, ...]) -> np.ndarray:
    columns = [i for i, name in enumerate(features) if name in log_features]
    out = matrix.astype(np.float64, copy=True)
    out[:, columns] = np.log1p(np.clip(out[:, columns], 0.0, None))
    return out
