"""params.yaml `online`: the online learner (`fraud-detection online-learner run`) and its prequential proof
(`dvc repro online_learning`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from fraud_detection.runtime.param_model import (
    NonNegativeFloat,
    NonNegativeInt,
    ParamModel,
    PositiveFloat,
    PositiveInt,
    Share,
)
from fraud_detection.simulation.params import DriftScenario

Fraction = Annotated[float, Field(gt=0, lt=1)]


class Poisoning(ParamModel):
    """A burst of flipped labels: `fraction` of the label events known on replayed day `day` (0-based)."""

    day: NonNegativeInt
    fraction: Share
    seed: NonNegativeInt


class EvaluationParams(ParamModel):
    days: PositiveInt  # days replayed after the data's last day
    drift: list[DriftScenario]  # the replayed days' drift, `start_day` counted from the first replayed day
    poison: Poisoning
    history_days: PositiveInt  # days of data before the replay that the replay's features need
    river_warmup_days: PositiveInt  # labelled days before the replay the River reference learns first
    seed: NonNegativeInt


class OnlineParams(ParamModel):
    update_every: PositiveInt  # labelled examples per update (micro-batch) at most; a simulated hour closes one too
    learning_rate: PositiveFloat  # Adam's step at the first update ...
    lr_decay: NonNegativeFloat  # ... then learning_rate / (1 + lr_decay * updates so far)
    batch_size: PositiveInt  # examples per gradient step within an update
    replay_ratio: NonNegativeFloat  # older examples from the reservoir mixed in, per new example
    replay_capacity: PositiveInt  # the reservoir's size (a uniform sample of every example learned)
    split: bool  # Dal Pozzolo et al.: a feedback model (investigations) averaged with a delayed-label model
    split_alpha: Share  # the feedback model's weight in the split
    range_margin: NonNegativeFloat  # input validation: a feature may leave its training range by this share of it
    max_label_rate_sigma: PositiveFloat  # a batch's fraud share this many binomial deviations off the running rate
    rate_warmup: PositiveInt  # examples of a label source learned before its running rate is trusted
    rate_halflife: PositiveInt  # examples over which the running fraud rate forgets half its past
    validation_share: Fraction  # labelled examples held out of learning (by transaction id) to validate updates
    validation_days: PositiveInt  # the validation window: held-out labels known in the last N days
    min_validation_frauds: PositiveInt  # a window with fewer frauds validates nothing (no update is published)
    publish_tolerance: NonNegativeFloat  # an update is published if its AP is within this of the online and champion
    rollback_margin: PositiveFloat  # the published model below its parent checkpoint by this much: rolled back
    eval: EvaluationParams
