"""params.yaml `evaluate`: the handbook's protocol (train week, label-delay gap, test week; several folds)."""

from __future__ import annotations

from typing import Literal

from fraud_detection.runtime.param_model import Day, ParamModel, PositiveInt


class EvaluateParams(ParamModel):
    first_test_start: Day
    folds: PositiveInt  # test weeks start at first_test_start and every test_days after
    train_days: PositiveInt
    test_days: PositiveInt
    top_k: PositiveInt  # card precision@k: cards an analyst can check per day
    # our features: logistic_regression, gradient_boosting; the handbook's (evaluation/handbook.py):
    # handbook_reference_lr, handbook_reference_rf
    baselines: list[
        Literal["logistic_regression", "gradient_boosting", "handbook_reference_lr", "handbook_reference_rf"]
    ]
