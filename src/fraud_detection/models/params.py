"""params.yaml `train`: which rows the candidate trains on, the network, the optimisation and the Trainer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from fraud_detection.runtime.param_model import NonNegativeFloat, NonNegativeInt, ParamModel, PositiveFloat, PositiveInt


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


class TrainParams(ParamModel):
    window_days: PositiveInt  # train on the latest N labelled days before the held-out days
    holdout_days: PositiveInt  # the latest labelled days, held out for the register stage's gate
    validation_fraction: Annotated[float, Field(gt=0, lt=1)]  # stratified share of the window for early stopping
    seed: NonNegativeInt
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
