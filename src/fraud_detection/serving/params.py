"""params.yaml `serve`: the real-time service's decisions, fallback rules, A/B routing, shadow and server settings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from fraud_detection.runtime.param_model import (
    NonNegativeFloat,
    NonNegativeInt,
    ParamModel,
    PositiveFloat,
    PositiveInt,
    Share,
)

SHARE_TOLERANCE = 1e-9


class Thresholds(ParamModel):
    """approve below `review`, decline at or above `decline`, review between."""

    review: Share
    decline: Share

    @model_validator(mode="after")
    def _in_order(self) -> Thresholds:
        if self.review > self.decline:
            raise ValueError(f"review <= decline ({self.review} > {self.decline})")
        return self


class FallbackParams(ParamModel):
    """The rules that score when the model cannot (the amount rule is `simulate.fraud.amount_threshold`)."""

    terminal_risk: Share  # scenario 2: a terminal's known 7-day fraud rate at least this
    amount_ratio: PositiveFloat  # scenario 3: an amount at least this times the customer's 30-day mean


class ABParams(ParamModel):
    salt: str
    variants: Annotated[dict[str, Share], Field(min_length=1)]  # registry alias -> share; the first the control

    @model_validator(mode="after")
    def _shares_sum_to_one(self) -> ABParams:
        if abs(sum(self.variants.values()) - 1) > SHARE_TOLERANCE:
            raise ValueError(f"variants' shares summing to 1 (they sum to {sum(self.variants.values())})")
        treatments = list(self.variants.items())[1:]
        for name, share in treatments:  # each treatment grows in its own lane of the hash (serving/routing.py)
            if share > 1 / len(treatments) + SHARE_TOLERANCE:
                k = len(treatments)
                raise ValueError(f"the treatment {name}'s share at most 1/{k} with {k} treatments (it is {share}; "
                                 "the first variant, the control, takes the rest)")  # fmt: skip
        return self


class ServeParams(ParamModel):
    thresholds: Thresholds
    fallback: FallbackParams
    ab: ABParams
    shadow: str | None  # a registry alias scored on every request, logged, never returned
    shadow_backlog: NonNegativeInt
    reload_interval_s: PositiveFloat
    admin_token_env: str
    max_batch: PositiveInt
    batch_max_latency_ms: PositiveInt
    max_body_bytes: PositiveInt
    log_queue: PositiveInt
    state_write_interval_ms: NonNegativeFloat
    daily_cache_entries: NonNegativeInt
    metrics_interval_s: PositiveFloat
    workers: PositiveInt | Literal["cpu_count"]
    request_timeout_s: PositiveFloat
    access_log: bool
    tracing: bool
    gc_threshold: PositiveInt
