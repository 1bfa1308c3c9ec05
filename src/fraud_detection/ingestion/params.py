"""params.yaml `ingest`: where transactions come from and what a valid row is."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from fraud_detection.runtime.param_model import Moment, ParamModel, PositiveFloat, Share


class IngestParams(ParamModel):
    source: str  # `simulate` (the simulate stage's output) or a parquet/CSV file or folder of them
    column_map: dict[str, str]  # source column -> our column
    engine: Literal["polars", "spark"]
    max_quarantine_fraction: Share
    valid_from: Moment
    valid_to: Moment
    max_amount: PositiveFloat

    @model_validator(mode="after")
    def _valid_range(self) -> IngestParams:
        if self.valid_from >= self.valid_to:
            raise ValueError(f"valid_from before valid_to ({self.valid_from} .. {self.valid_to})")
        return self
