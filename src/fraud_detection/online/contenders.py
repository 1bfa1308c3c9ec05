"""The prequential replay's other models, beside `OnlineLearner`: the static champion, the Dal Pozzolo split and
the River reference. Each scores rows (`predict`) and takes label micro-batches (`learn`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraud_detection.models.scorer import FraudScorer
from fraud_detection.online.learner import Examples, OnlineLearner, Report


class Static:
    """The champion, never updated."""

    report = None

    def __init__(self, champion: FraudScorer) -> None:
        self.champion = champion

    def predict(self, x: np.ndarray, trees: np.ndarray) -> np.ndarray:
        return self.champion.predict_proba(x)

    def learn(self, batch: Examples, now_us: int) -> None:
        return None


class Split:
    """Dal Pozzolo et al. (IEEE TNNLS 2018): a feedback model learning the investigations' labels and a delayed model
    learning the delayed ones, both from the champion, averaged with the feedback model's weight `alpha`."""

    def __init__(self, feedback: OnlineLearner, delayed: OnlineLearner, alpha: float) -> None:
        self.feedback, self.delayed, self.alpha = feedback, delayed, alpha

    @property
    def report(self) -> Report:
        both = Report()
        for part in (self.feedback.report, self.delayed.report):
            for name in ("updates", "published", "rolled_back", "rejected", "learned", "held_out"):
                setattr(both, name, getattr(both, name) + getattr(part, name))
            both.held_back.update(part.held_back)
        return both

    def predict(self, x: np.ndarray, trees: np.ndarray) -> np.ndarray:
        return self.alpha * self.feedback.predict(x, trees) + (1 - self.alpha) * self.delayed.predict(x, trees)

    def learn(self, batch: Examples, now_us: int) -> None:
        for learner, source in ((self.feedback, True), (self.delayed, False)):
            part = batch.take(batch.investigation == source)
            if len(part):
                learner.learn(part, now_us)


class RiverReference:
    """The field's reference: River's online logistic regression on standardised features (its own running
    scaler), learning every label as it comes, one at a time (`learn_one`, River's own way: stochastic gradient
    steps). It starts from the labelled rows known before the replay, in time order."""

    report = None

    def __init__(self, features: tuple[str, ...], warmup_x: np.ndarray, warmup_y: np.ndarray,
                 learning_rate: float = 0.01) -> None:  # fmt: skip
        from river import compose, linear_model, optim, preprocessing

        self.features = list(features)
        self.model = compose.Pipeline(
            preprocessing.StandardScaler(), linear_model.LogisticRegression(optimizer=optim.SGD(learning_rate))
        )
        self._learn(warmup_x, warmup_y)

    def predict(self, x: np.ndarray, trees: np.ndarray) -> np.ndarray:
        return self.model.predict_proba_many(self._frame(x))[True].to_numpy()

    def learn(self, batch: Examples, now_us: int) -> None:
        self._learn(batch.x, batch.y)

    def _learn(self, x: np.ndarray, y: np.ndarray) -> None:
        for row, label in zip(self._frame(x).to_dict("records"), y.tolist(), strict=True):
            self.model.learn_one(row, bool(label))

    def _frame(self, x: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(x, columns=self.features)
