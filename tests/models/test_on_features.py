"""A model registered before features were added keeps scoring on today's feature matrices, by name."""

from __future__ import annotations

import numpy as np
import pytest

from fraud_detection.models.scorer import OnFeatures, on_features


class OldScorer:
    """Scores its second feature; its features are in another order than today's."""

    features = ("b", "a")

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        assert matrix.shape[1] == 2
        return matrix[:, 1]

    def neutral_row(self) -> np.ndarray:
        return np.array([20.0, 10.0])


def test_a_model_on_fewer_features_picks_its_own_by_name() -> None:
    scorer = on_features(OldScorer(), ("a", "new", "b"))
    assert isinstance(scorer, OnFeatures)
    matrix = np.array([[0.1, 99.0, 0.7], [0.4, 99.0, 0.2]])
    assert scorer.predict_proba(matrix).tolist() == [0.1, 0.4]  # its "a", whatever the order
    assert scorer.neutral_row().tolist() == [10.0, 0.0, 20.0]


def test_a_model_on_todays_features_is_itself() -> None:
    old = OldScorer()
    assert on_features(old, ("b", "a")) is old


def test_a_model_needing_a_removed_feature_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"needs features \['b'\] that no longer exist"):
        on_features(OldScorer(), ("a", "new"))
