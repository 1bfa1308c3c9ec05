"""params.yaml `simulate`: the simulator's size (a profile), its fraud scenarios and the drift injected."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from fraud_detection.runtime.param_model import (
    Day,
    NonNegativeFloat,
    NonNegativeInt,
    ParamModel,
    PositiveFloat,
    PositiveInt,
)

GRID_SIZE = 100.0  # customers and terminals live on a GRID_SIZE x GRID_SIZE grid

Hours = Annotated[float, Field(gt=0, le=24)]
FraudFraction = Annotated[float, Field(gt=0, le=1)]
GridCoordinate = Annotated[float, Field(ge=0, le=GRID_SIZE)]


class SimulationSize(ParamModel):
    n_customers: PositiveInt
    n_terminals: PositiveInt
    n_days: PositiveInt


class FraudScenarios(ParamModel):
    """The handbook's three scenarios."""

    amount_threshold: PositiveFloat  # 1: every amount above this is fraud
    terminals_per_day: NonNegativeInt  # 2: terminals compromised each day ...
    terminal_compromise_days: PositiveInt  # ... for this many days
    customers_per_day: NonNegativeInt  # 3: customers compromised each day ...
    customer_compromise_days: PositiveInt  # ... for this many days ...
    customer_fraud_fraction: FraudFraction  # ... this share of their transactions fraud ...
    customer_amount_multiplier: PositiveFloat  # ... with the amount multiplied by this


class AmountInflation(ParamModel):
    """From `start_day`, every drawn amount is multiplied by `factor`."""

    kind: Literal["amount_inflation"]
    start_day: NonNegativeInt
    factor: PositiveFloat


class CardTesting(ParamModel):
    """For `days` days from `start_day`, `customers_per_day` cards a day get small night-time frauds far from home."""

    kind: Literal["new_fraud_pattern"]
    start_day: NonNegativeInt
    days: PositiveInt
    customers_per_day: PositiveInt
    tx_per_card: PositiveInt
    min_amount: PositiveFloat
    max_amount: PositiveFloat
    night_end_hour: Hours

    @model_validator(mode="after")
    def _amounts_in_order(self) -> CardTesting:
        if self.max_amount < self.min_amount:
            raise ValueError(f"max_amount >= min_amount ({self.min_amount})")
        return self


class TerminalCluster(ParamModel):
    """For `days` days from `start_day`, a share of the transactions at terminals near `center` is fraud."""

    kind: Literal["terminal_cluster"]
    start_day: NonNegativeInt
    days: PositiveInt
    center: Annotated[list[GridCoordinate], Field(min_length=2, max_length=2)]
    radius: PositiveFloat
    fraud_fraction: FraudFraction


DriftScenario = Annotated[AmountInflation | CardTesting | TerminalCluster, Field(discriminator="kind")]


class SimulateParams(ParamModel):
    profile: str
    profiles: dict[str, SimulationSize]
    start_date: Day
    radius: NonNegativeFloat
    seed: NonNegativeInt
    fraud: FraudScenarios
    drift: list[DriftScenario]

    @model_validator(mode="after")
    def _profile_is_known(self) -> SimulateParams:
        """Drift start days are not bounded by the profile's days: an entry starting after the run acts in the
        traffic days that continue it (`fraud-detection traffic run`)."""
        if self.profile not in self.profiles:
            raise ValueError(f"profile one of {sorted(self.profiles)}")
        return self

    @property
    def size(self) -> SimulationSize:
        """The size of the selected profile."""
        return self.profiles[self.profile]
