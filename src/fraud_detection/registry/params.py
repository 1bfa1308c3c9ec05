"""params.yaml `register`: the registered model's name and the promotion gate's checks."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from fraud_detection.runtime.param_model import NonNegativeFloat, ParamModel, PositiveFloat, Share


class GateParams(ParamModel):
    """The checks a candidate passes to become champion (the monitor's rollback guardrail uses the same floors)."""

    min_auc_roc: Share
    min_average_precision: Share
    max_average_precision_drop: NonNegativeFloat  # the candidate's AP may be at most this much below the champion's
    min_high_score_share: Share  # share of the window scored above 0.5: a model that flags nothing is broken ...
    max_high_score_share: Share  # ... and one that flags everything is broken too
    max_latency_ms: PositiveFloat  # single-row inference through the packaged model: the lowest median of 5 rounds

    @model_validator(mode="after")
    def _shares_in_order(self) -> GateParams:
        if self.min_high_score_share > self.max_high_score_share:
            raise ValueError("min_high_score_share <= max_high_score_share")
        return self


class RegisterParams(ParamModel):
    model_name: str
    promotion: Literal["rollout", "direct"]  # a passing candidate: challenger, then a rollout; or champion at once
    gate: GateParams
