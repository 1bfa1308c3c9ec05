"""Gradient-boosted trees (LightGBM), the candidate's second member beside the network (`train.boosting`).

The trees see the raw feature values (splits need no scaling), stop early on the validation rows' average
precision, as the network does, and are saved in LightGBM's own text format (`Booster.save_model`), which needs
neither pickle nor torch to read back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import lightgbm
import numpy as np

if TYPE_CHECKING:
    from pathlib import Path

    from fraud_detection.models.params import BoostingParams


SINGLE_THREAD_ROWS = 64  # calls of up to this many rows score on one thread (`BoostedTrees.predict_proba`)


@dataclass(frozen=True)
class BoostedTrees:
    booster: lightgbm.Booster
    single_thread: lightgbm.Booster = field(init=False, repr=False, compare=False)  # the same trees, for few rows

    def __post_init__(self) -> None:
        object.__setattr__(self, "single_thread", lightgbm.Booster(model_str=self.booster.model_to_string()))

    @property
    def rounds(self) -> int:
        return self.booster.num_trees()

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """One probability per row (raw feature values, the network's column order), float64.

        A few rows (a request's) score on one thread, through their own copy of the trees. Waking LightGBM's
        OpenMP threads for them gains nothing, and on a busy machine waiting for those threads turns 0.03 ms into
        milliseconds: the register gate's single-row pyfunc median, with two other busy processes on 2 cores, was
        8.0 ms (1.0 ms on one thread; 0.7 ms on a quiet machine). The copy is always called with the same thread
        count, so that neither booster's configuration changes from call to call."""
        if len(matrix) <= SINGLE_THREAD_ROWS:
            return np.asarray(self.single_thread.predict(matrix, num_threads=1), dtype=np.float64)
        return np.asarray(self.booster.predict(matrix), dtype=np.float64)

    def save(self, path: Path) -> None:
        self.booster.save_model(path)

    @classmethod
    def load(cls, path: Path) -> BoostedTrees:
        return cls(lightgbm.Booster(model_file=path))


def fit_trees(
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    features: tuple[str, ...],
    params: BoostingParams,
    seed: int,
    increasing: tuple[int, ...] = (),
) -> BoostedTrees:
    """Boost on `train` (raw feature matrix, labels); keep the rounds up to the best validation average precision.
    The trees never decrease in the `increasing` columns (LightGBM's monotone constraints)."""
    settings = {
        "objective": "binary",
        "metric": "average_precision",
        "learning_rate": params.learning_rate,
        "num_leaves": params.num_leaves,
        "min_data_in_leaf": params.min_child_samples,
        "lambda_l2": params.l2,
        "monotone_constraints": [int(i in increasing) for i in range(len(features))],
        "monotone_constraints_method": "intermediate",
        "seed": seed,
        "deterministic": True,  # same data, params and seed => the same trees
        "force_row_wise": True,
        "verbosity": -1,
    }
    names = list(features)
    booster = lightgbm.train(
        settings,
        lightgbm.Dataset(train[0], train[1], feature_name=names, free_raw_data=True),
        num_boost_round=params.max_rounds,
        valid_sets=[lightgbm.Dataset(validation[0], validation[1], feature_name=names)],
        callbacks=[lightgbm.early_stopping(params.patience, verbose=False)],
    )
    # Keep the best rounds only: the saved model is exactly what validation chose
    best = booster.model_to_string(num_iteration=booster.best_iteration)
    return BoostedTrees(lightgbm.Booster(model_str=best))
