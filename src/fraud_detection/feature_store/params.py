"""params.yaml `materialize` and `training_set`: what the online store is loaded up to, and the feature service the
model is trained (and served) with."""

from __future__ import annotations

from typing import Literal

from fraud_detection.runtime.param_model import Moment, ParamModel, PositiveInt


class MaterializeParams(ParamModel):
    end: Literal["latest"] | Moment  # `latest`: the day after the last transaction


class TrainingSetParams(ParamModel):
    feature_service: str
    chunk_rows: PositiveInt  # entity rows per point-in-time retrieval: bounds the stage's memory, not its output
