"""params.yaml `notebooks`: each report notebook's parameters (injected over its `parameters` cell) and the cell
timeout."""

from __future__ import annotations

from fraud_detection.runtime.param_model import NonNegativeFloat, ParamModel, PositiveFloat, PositiveInt


class DataOverviewParams(ParamModel):
    amount_bins: PositiveInt


class ModelEvaluationParams(ParamModel):
    model: str  # the backtest model whose scores give the threshold and cost trade-off
    review_cost: NonNegativeFloat


class MonitoringReviewParams(ParamModel):
    days: PositiveInt
    exclude: list[str]


class NotebooksParams(ParamModel):
    cell_timeout_s: PositiveFloat
    data_overview: DataOverviewParams
    model_evaluation: ModelEvaluationParams
    monitoring_review: MonitoringReviewParams
