"""params.yaml `batch_predict`: which days to score with the champion, the queue, and the gate a batch passes."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from fraud_detection.runtime.param_model import Day, NonNegativeInt, ParamModel, PositiveFloat, PositiveInt


class BatchGateParams(ParamModel):
    max_psi: PositiveFloat  # the batch's score PSI against the previous published batch is at most this
    psi_bins: PositiveInt  # quantile bins of the previous batch's scores


class BatchPredictParams(ParamModel):
    engine: Literal["polars", "spark"]
    date: Literal["latest"] | Day  # the day to score (`latest`: the last day of the data)
    start_date: Day | None  # a backfill: every day from start_date to end_date (inclusive)
    end_date: Day | None
    queue_size: PositiveInt  # cards in the investigation queue
    drivers: NonNegativeInt  # features shown per queued card
    gate: BatchGateParams

    @model_validator(mode="after")
    def _backfill_bounds(self) -> BatchPredictParams:
        if (self.start_date is None) != (self.end_date is None):
            raise ValueError("start_date and end_date both set (a backfill) or both null")
        if self.start_date is not None and self.end_date is not None and self.start_date > self.end_date:
            raise ValueError(f"start_date <= end_date ({self.start_date} .. {self.end_date})")
        return self
