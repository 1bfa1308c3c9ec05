"""params.yaml `train`: which rows the candidate trains on, the network, the optimisation and the Trainer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from fraud_detection.runtime.param_model import (
    NonNegativeFloat,
    NonNegativeInt,
    ParamModel,
    PositiveFloat,
    PositiveInt,
    Share,
)


class TrainerParams(ParamModel):
    """Lightning's Trainer: one GPU {accelerator: gpu, devices: 1}; DDP over 8 GPUs on 2 nodes {accelerator: gpu,
    devices: 8, num_nodes: 2, strategy: ddp}."""

    accelerator: str
    devices: PositiveInt | list[NonNegativeInt] | Literal["auto"]
    strategy: str
    precision: str | int
    num_nodes: PositiveInt

    def as_kwargs(self) -> dict[str, Any]:
        return self.model_dump()


class BoostingParams(ParamModel):
    """The gradient-boosted trees averaged with the network (models/boosting.py)."""

    weight: Share  # the trees' share of the candidate's probability: 0 = the network alone (no trees trained)
    max_rounds: PositiveInt  # boosting rounds at most; early stopping on the validation rows keeps the best
    patience: PositiveInt  # rounds without a better validation average precision
    learning_rate: PositiveFloat
    num_leaves: Annotated[int, Field(ge=2)]
    min_child_samples: PositiveInt  # rows per leaf at least
    l2: NonNegativeFloat  # L2 penalty on the leaf values


class TrainParams(ParamModel):
    window_days: PositiveInt  # train on the latest N labelled days before the held-out days
    holdout_days: PositiveInt  # the latest labelled days, held out for the register stage's gate
    validation_fraction: Annotated[float, Field(gt=0, lt=1)]  # stratified share of the window for early stopping
    increasing: list[str]  # features the score never decreases in (network and trees are monotone in them)
    seed: NonNegativeInt
    log1p: bool  # the network's preprocessing: log1p of the heavy-tailed features before scaling, or scaling alone
    hidden_sizes: Annotated[list[PositiveInt], Field(min_length=1)]
    dropout: Annotated[float, Field(ge=0, lt=1)]
    pos_weight: PositiveFloat
    optimizer: Literal["adam", "adamw", "sgd"]
    learning_rate: PositiveFloat
    weight_decay: NonNegativeFloat
    batch_size: PositiveInt
    max_epochs: PositiveInt
    patience: PositiveInt
    trainer: TrainerParams
    boosting: BoostingParams
