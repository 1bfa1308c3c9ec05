"""params.yaml `monitor`: the windows compared, how drift is measured and levelled, and what it leads to."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from fraud_detection.runtime.param_model import NonNegativeFloat, NonNegativeInt, ParamModel, PositiveFloat, PositiveInt

Level = Literal["mild", "moderate", "severe"]


class DriftThresholds(ParamModel):
    """A column's drift level from its PSI: none below mild, then mild, moderate, severe."""

    mild: PositiveFloat
    moderate: PositiveFloat
    severe: PositiveFloat

    @model_validator(mode="after")
    def _in_order(self) -> DriftThresholds:
        if not self.mild <= self.moderate <= self.severe:
            raise ValueError(f"mild <= moderate <= severe ({self.mild}, {self.moderate}, {self.severe})")
        return self


class Guardrail(ParamModel):
    """Rollback: the champion is under the register gate's floors while the previous champion clears them and beats
    its average precision by `rollback_margin`."""

    rollback_margin: NonNegativeFloat


class VolumeBounds(ParamModel):
    """A day's served volume against the reference window's daily volume: `drop` below, `spike` above."""

    drop: PositiveFloat
    spike: PositiveFloat

    @model_validator(mode="after")
    def _in_order(self) -> VolumeBounds:
        if not self.drop < 1 < self.spike:
            raise ValueError(f"drop < 1 < spike ({self.drop}, {self.spike})")
        return self


class EvidentlyParams(ParamModel):
    max_rows: PositiveInt  # Evidently's reports run on a random sample of each window
    seed: NonNegativeInt
    method: str  # quantile_psi (ours) or one of Evidently's per-column methods (psi, ks, jensenshannon, ...)


class MonitorParams(ParamModel):
    window_days: PositiveInt
    source: Literal["auto", "prediction_log", "features"]
    quality_window_days: PositiveInt
    binning: Literal["quantile", "sturges"]
    bins: PositiveInt
    thresholds: DriftThresholds
    retrain_level: Level
    guardrail: Guardrail
    act: bool
    volume: VolumeBounds
    evidently: EvidentlyParams
