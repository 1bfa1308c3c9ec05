"""params.yaml `features`: the engine of the features stage and the label delay every stage respects."""

from __future__ import annotations

from typing import Literal

from fraud_detection.runtime.param_model import NonNegativeInt, ParamModel, PositiveInt


class FeaturesParams(ParamModel):
    engine: Literal["polars", "spark"]  # the online updater is the third engine, used by serving
    label_delay_days: NonNegativeInt  # a label is known this many days after its transaction (every stage)
    part_rows: PositiveInt  # polars: transactions per part (the stage's memory grows with a part, not the data)
