"""params.yaml `feedback`: where labels come from (the investigators) and how the label stream is consumed."""

from __future__ import annotations

from pydantic import NonNegativeInt, PositiveInt

from fraud_detection.runtime.param_model import ParamModel


class FeedbackParams(ParamModel):
    investigations_per_day: NonNegativeInt  # cards investigated at the end of each day (highest served risk first)
    investigation_lookback_days: PositiveInt  # an investigated card's transactions of this many days get labels
    consume_batch: PositiveInt  # label events the consumer reads and applies at a time
