"""params.yaml `schedule`: when each scheduled job runs, in which Kedro environment, where its log goes."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import field_validator

from fraud_detection.runtime.param_model import ParamModel, PositiveInt

WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")  # cron's 0..6
_TIME = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d")


class Daily(ParamModel):
    at: str  # "HH:MM" on the scheduler's clock

    @field_validator("at", mode="before")
    @classmethod
    def _time_of_day(cls, value: Any) -> str:
        return time_of_day(value)


class Weekly(Daily):
    weekday: Literal["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]


class Every(ParamModel):
    every_minutes: Literal[1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60]  # a divisor of 60: the same minutes each hour


class ScheduleParams(ParamModel):
    env: str | None  # the Kedro environment of every job (null: base + local; `production`: conf/production)
    log_dir: str  # each job appends to <log_dir>/<job>.log and holds <log_dir>/<job>.lock while it runs
    dvc_lock_wait_minutes: PositiveInt  # a job that runs DVC waits this long for another's DVC run to end
    batch_predict: Daily
    feedback: Daily
    monitor: Daily
    rollout_tick: Daily
    online_learner: Every
    retrain: Weekly


def time_of_day(value: Any) -> str:
    """`value` if it is a time of day written "HH:MM"; a ValueError saying what was expected otherwise."""
    if isinstance(value, str) and _TIME.fullmatch(value):
        return value
    hint = " (YAML reads an unquoted 23:59 as the number 1439: quote it)" if isinstance(value, int) else ""
    raise ValueError(f'a time of day in quotes, "HH:MM" from "00:00" to "23:59"; got {value!r}{hint}')
