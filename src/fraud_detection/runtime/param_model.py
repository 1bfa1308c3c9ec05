"""The base of every params.yaml model, and the constrained types they share.

Strict: YAML's types are taken as they are (no "5" for 5, no 1 for true); a float field takes an integer. Frozen:
a stage cannot change what the next one reads. Closed: an unknown key (a typo) is an error. No field has a default:
every value lives in params.yaml, and only there.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class ParamModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
Share = Annotated[float, Field(ge=0, le=1)]  # a probability or a share of rows, 0 and 1 included
Day = Annotated[date, Field(strict=False)]  # YAML's "2018-04-01" (a string) as a date
Moment = Annotated[datetime, Field(strict=False)]  # an ISO date or date-time
