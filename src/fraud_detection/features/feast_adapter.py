"""Feast's view of the one feature definition: inputs as Feast hands them to an on-demand view, outputs as lists."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import numpy as np
import pandas as pd

from fraud_detection.features.definitions import (
    ON_DEMAND_FEATURES,
    STATE_COLUMNS,
    epoch_micros,
    features_of_one,
    transaction_features,
)


def on_demand_features(inputs: dict[str, Any]) -> dict[str, list]:
    """Python-mode on-demand transformation: `inputs` maps names to lists (one item per row)."""
    times = inputs["tx_datetime"]
    if len(times) == 1:  # the online path: one request
        one = features_of_one({n: inputs[n][0] for n in STATE_COLUMNS}, _micros(times[0]), inputs["tx_amount"][0])
        return {name: [one[name]] for name in ON_DEMAND_FEATURES}
    state = {name: np.asarray(inputs[name], dtype=np.float64) for name in STATE_COLUMNS}  # None becomes NaN
    micros = pd.to_datetime(pd.Series(times), utc=True).dt.as_unit("us").astype("int64").to_numpy()
    features = transaction_features(state, micros, inputs["tx_amount"])
    return {name: features[name].tolist() for name in ON_DEMAND_FEATURES}


def _micros(moment: Any) -> int:
    """Epoch microseconds of a datetime (naive means UTC), a pandas Timestamp or a numpy datetime64."""
    if isinstance(moment, np.datetime64):
        return int(moment.astype("datetime64[us]").astype(np.int64))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return epoch_micros(moment)
