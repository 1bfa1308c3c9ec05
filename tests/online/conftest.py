"""The online learner's test data: params.yaml `online` sized for small batches, labelled examples of the small set."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from fraud_detection.evaluation.protocol import labelled_window
from fraud_detection.features.definitions import FEATURES
from fraud_detection.features.matrix import feature_matrix
from fraud_detection.online.learner import Examples, trees_proba
from fraud_detection.online.params import OnlineParams
from fraud_detection.registry.candidate import Candidate
from fraud_detection.runtime.params import Params
from tests.conftest import changed


@pytest.fixture(scope="session")
def online_params(params: Params) -> OnlineParams:
    """params.yaml `online`, sized for the small set: a few hundred examples a batch, its 12 % fraud share (a 30 %
    flip moves a batch of 1,168 by 22 binomial deviations; its clean batches stay within 4)."""
    return changed(params.online, rate_warmup=200, min_validation_frauds=5, validation_days=30,
                   max_label_rate_sigma=10.0)  # fmt: skip


@pytest.fixture(scope="session")
def labelled(small_training_set: pl.DataFrame) -> pl.DataFrame:
    """The small set's labelled rows (known 7 days after), oldest first."""
    return labelled_window(small_training_set, 30, 7).sort("tx_datetime", "transaction_id")


def examples_of(rows: pl.DataFrame, champion: Candidate, investigation: bool = False) -> Examples:
    x = feature_matrix(rows)
    known = rows["tx_datetime"].dt.epoch("us").to_numpy() + 7 * 86_400_000_000
    return Examples(x, rows["tx_fraud"].to_numpy().astype(np.int8), rows["transaction_id"].to_numpy(),
                    np.full(rows.height, investigation), known, trees_proba(champion.scorer, x))  # fmt: skip


__all__ = ["FEATURES", "examples_of"]
