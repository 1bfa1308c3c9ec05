"""params.yaml `experiment`: the A/B analysis of the served variants (`dvc repro experiment`,
`fraud-detection experiment analyze`)."""

from __future__ import annotations

import itertools
from typing import Annotated, Literal

from pydantic import Field, PositiveInt, model_validator

from fraud_detection.runtime.param_model import NonNegativeFloat, ParamModel, Share

SHARE_TOLERANCE = 1e-6


class ExperimentParams(ParamModel):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]  # reports/experiments/<name>.html
    shares: dict[str, Share] | None  # the design: variant -> share, the control first; None: serve.ab.variants
    alpha: Annotated[float, Field(gt=0, lt=0.5)]  # the tests' level (two-sided, before the Holm correction)
    relative_target_effect: Annotated[float, Field(gt=0)]  # the effect worth detecting, relative to the control
    bootstrap_replicates: PositiveInt  # the customer-clustered bootstrap of AP and latency p99
    srm_threshold: Annotated[float, Field(gt=0, lt=1)]  # a sample ratio mismatch below this p-value

    @model_validator(mode="after")
    def _shares_sum_to_one(self) -> ExperimentParams:
        if self.shares is not None and abs(sum(self.shares.values()) - 1) > SHARE_TOLERANCE:
            raise ValueError(f"shares summing to 1 (they sum to {sum(self.shares.values())})")
        return self


Metric = Literal["fraud_amount_recall", "false_decline_rate", "review_rate", "average_precision", "latency_p99_ms",
                    "degraded_rate", "fallback_rate"]  # fmt: skip  # the analysis's metrics (analysis.METRICS)


class RolloutParams(ParamModel):
    """params.yaml `rollout`: a candidate's way from shadow to champion (`fraud-detection rollout`)."""

    steps: Annotated[list[Annotated[int, Field(ge=0, le=100)]], Field(min_length=2)]  # percent of customers
    min_labelled: PositiveInt  # matured labelled transactions per arm (or shadow pairs) before a step may advance
    min_customers: PositiveInt  # customers a metric rests on, per arm, before it is judged (recall: with a fraud)
    primary_metric: Metric  # what the candidate is for: shown worse than the champion beyond the tolerance, it aborts
    primary_tolerance: NonNegativeFloat
    guardrails: dict[Metric, NonNegativeFloat]  # metric -> tolerated harm: breached, it aborts; promoting, shown within

    @model_validator(mode="after")
    def _steps_rise_to_100(self) -> RolloutParams:
        check_steps(self.steps)
        return self


def check_steps(steps: list[int]) -> None:
    """A rollout's steps: percents from 0 to 100, rising strictly, at least two, the last 100."""
    rising = all(b > a for a, b in itertools.pairwise(steps))
    if len(steps) < 2 or not rising or steps[-1] != 100 or steps[0] < 0:
        raise ValueError(f"steps rising strictly from 0..99 to 100 (they are {steps})")
