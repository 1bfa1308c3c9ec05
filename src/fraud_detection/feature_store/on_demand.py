"""Feast's view of the one feature definition: inputs as Feast hands them to an on-demand view, outputs as lists."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import numpy as np
import pandas as pd

from fraud_detection.features.definitions import (
    CUSTOMER_INTRADAY,
    INTRADAY_STATE,
    NUMBER_STATE,
    ON_DEMAND_FEATURES,
    TERMINAL_LISTS,
    epoch_micros,
    features_of_one,
    transaction_features,
)

DAILY_NUMBERS = tuple(name for name in NUMBER_STATE if name not in CUSTOMER_INTRADAY)  # an input each


def on_demand_features(inputs: dict[str, Any]) -> dict[str, list]:
    """Python-mode on-demand transformation: `inputs` maps names to lists (one item per row); the intraday state
    comes as its stored list (`INTRADAY_STATE`)."""
    times = inputs["tx_datetime"]
    intraday = [_intraday(values) for values in inputs[INTRADAY_STATE]]
    events = {name: [_events(values) for values in inputs[name]] for name in TERMINAL_LISTS}
    if len(times) == 1:  # the online path: one request
        state = {n: inputs[n][0] for n in DAILY_NUMBERS} | dict(zip(CUSTOMER_INTRADAY, intraday[0], strict=True))
        state |= {name: lists[0] for name, lists in events.items()}
        one = features_of_one(state, _micros(times[0]), inputs["tx_amount"][0])
        return {name: [one[name]] for name in ON_DEMAND_FEATURES}
    state = {name: np.asarray(inputs[name], dtype=np.float64) for name in DAILY_NUMBERS}  # None becomes NaN
    state |= events
    columns = np.array(intraday, dtype=np.float64).reshape(len(times), len(CUSTOMER_INTRADAY))
    state |= {name: columns[:, i] for i, name in enumerate(CUSTOMER_INTRADAY)}
    micros = pd.to_datetime(pd.Series(times), utc=True).dt.as_unit("us").astype("int64").to_numpy()
    features = transaction_features(state, micros, inputs["tx_amount"])
    return {name: features[name].tolist() for name in ON_DEMAND_FEATURES}


NO_INTRADAY = (None,) * len(CUSTOMER_INTRADAY)


def _intraday(values: Any) -> Any:
    """The stored list's values (`CUSTOMER_INTRADAY` order), None where there is none. Feast's schema inference (at
    apply) hands the view a one-item sample list: a list of another length than the stored one's reads as none."""
    return values if values is not None and len(values) == len(CUSTOMER_INTRADAY) else NO_INTRADAY


def _events(values: Any) -> Any:
    """A terminal's [time of day, fraud, ...] list as stored; None where there is none. A list of odd length is
    Feast's schema inference at apply, which hands the view a one-item sample list: it reads as none."""
    return values if values is not None and len(values) % 2 == 0 else None


def _micros(moment: Any) -> int:
    """Epoch microseconds of a datetime (naive means UTC), a pandas Timestamp or a numpy datetime64."""
    if isinstance(moment, np.datetime64):
        return int(moment.astype("datetime64[us]").astype(np.int64))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return epoch_micros(moment)
