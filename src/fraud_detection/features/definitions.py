"""The one definition of every feature the model sees.

Time is cut into UTC days. For a transaction at time t on day D by customer c at terminal k:

- customer windows (N = 1, 7, 30): c's transactions on the N whole days before D, plus c's transactions earlier on
  day D (strictly before t: the transaction being scored, and any at the very same instant, are not counted);
  `customer_nb_tx_Nd` counts them, `customer_avg_amount_Nd` is their mean amount (0 when there are none);
- terminal windows (N = 1, 7, 30): k's transactions on the N whole days that end `label_delay_days` before D, i.e.
  days D - delay - N .. D - delay - 1, whose labels are all known by the start of day D; `terminal_nb_tx_Nd`
  counts them, `terminal_risk_Nd` is their fraud rate (0 when there are none);
- request-time features, computed from the request and the stored features: `tx_amount`, `tx_during_weekend`
  (Saturday or Sunday, UTC), `tx_during_night` (before 06:00 UTC), `tx_amount_over_customer_avg_Nd` (the amount
  divided by the customer's mean amount in the window; 0 when the customer has no transaction in it).

Windows over whole days ("day tiles") keep every engine exact and cheap: the stored state is a few counts and
sums per entity and day, and the online path only has to keep today's running totals. The stored state:

- `customer_daily`, per customer and day D (stamped D 00:00 UTC): count and amount sum over the N days before D;
- `customer_intraday`, per customer, as of its latest transaction time s on day D: count and sum of the day's
  transactions before s and at s, and s itself (so that a request at s sees only what came strictly before it).
  The feature store holds these five values as one feature, `customer_today_state` (a list of doubles in
  `CUSTOMER_INTRADAY` order: `pack_intraday`, `unpack_intraday`), because serving reads and writes this view on
  every transaction and a store keeps a row per feature: one row a customer instead of five;
- `terminal_daily`, per terminal and day D: count and frauds over days D - delay - N .. D - delay - 1.

`transaction_features` turns that state plus the request into the features. It is the only place the features
are computed: the polars and Spark engines, Feast's on-demand feature view (offline and online) and the online
updater all call it. Missing state (an unknown customer or terminal) counts as no transactions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

CUSTOMER_WINDOWS = (1, 7, 30)
TERMINAL_WINDOWS = (1, 7, 30)
MICROS_PER_DAY = 86_400_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROS_PER_HOUR = 3_600_000_000
NIGHT_ENDS_HOUR = 6
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)

# Stored state, by feature view.
CUSTOMER_DAILY = tuple(f"customer_nb_tx_prev_{n}d" for n in CUSTOMER_WINDOWS) + tuple(
    f"customer_amount_prev_{n}d" for n in CUSTOMER_WINDOWS
)
CUSTOMER_INTRADAY = (
    "customer_today_nb_tx_before",
    "customer_today_amount_before",
    "customer_today_nb_tx_at",
    "customer_today_amount_at",
    "customer_today_last_tx_us",
)
INTRADAY_STATE = "customer_today_state"  # the stored form of CUSTOMER_INTRADAY (counts and the time exact: < 2**53)
TERMINAL_DAILY = tuple(f"terminal_nb_tx_lagged_{n}d" for n in TERMINAL_WINDOWS) + tuple(
    f"terminal_nb_fraud_lagged_{n}d" for n in TERMINAL_WINDOWS
)
STATE_COLUMNS = CUSTOMER_DAILY + CUSTOMER_INTRADAY + TERMINAL_DAILY

# The features the model sees, in this order.
FEATURES = (
    "tx_amount",
    "tx_during_weekend",
    "tx_during_night",
    *(f"customer_nb_tx_{n}d" for n in CUSTOMER_WINDOWS),
    *(f"customer_avg_amount_{n}d" for n in CUSTOMER_WINDOWS),
    *(f"tx_amount_over_customer_avg_{n}d" for n in CUSTOMER_WINDOWS),
    *(f"terminal_nb_tx_{n}d" for n in TERMINAL_WINDOWS),
    *(f"terminal_risk_{n}d" for n in TERMINAL_WINDOWS),
)


# The request's own fields; the stored state and these give every feature.
REQUEST_FIELDS = ("tx_datetime", "tx_amount")
# Features computed on demand (the rest are request fields passed through as they are).
ON_DEMAND_FEATURES = tuple(name for name in FEATURES if name not in REQUEST_FIELDS)


def epoch_micros(moment: datetime) -> int:
    """Epoch microseconds of an aware datetime, exactly (integer arithmetic)."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def pack_intraday(row: Mapping[str, Any]) -> list[float]:
    """A customer's intraday row (`CUSTOMER_INTRADAY` names) as the feature store holds it."""
    return [float(row[name]) for name in CUSTOMER_INTRADAY]


def unpack_intraday(values: Any) -> dict[str, Any]:
    """The intraday row of a stored `customer_today_state` (None values where the store has none)."""
    if values is None or len(values) == 0:
        return dict.fromkeys(CUSTOMER_INTRADAY)
    if len(values) != len(CUSTOMER_INTRADAY):
        raise ValueError(f"{INTRADAY_STATE} holds {len(values)} values; expected {len(CUSTOMER_INTRADAY)}")
    return dict(zip(CUSTOMER_INTRADAY, values, strict=True))


def day_of(micros: np.ndarray | int) -> np.ndarray | int:
    """UTC day number (days since 1970-01-01) of epoch microseconds."""
    return micros // MICROS_PER_DAY


def transaction_features(state: Mapping[str, Any], tx_datetime_us: Any, tx_amount: Any) -> dict[str, np.ndarray]:
    """The features of many transactions, from their stored state and request data (arrays of equal length).

    `state` maps each name of STATE_COLUMNS to an array (None/NaN where the entity is unknown).
    """
    t = np.asarray(tx_datetime_us, dtype=np.int64)
    return _features(
        _ARRAYS,
        {n: _ARRAYS.filled(state[n], len(t)) for n in STATE_COLUMNS},
        t,
        np.asarray(tx_amount, dtype=np.float64),
    )


def features_of_one(state: Mapping[str, Any], tx_datetime_us: int, tx_amount: float) -> dict[str, int | float]:
    """The features of one transaction, in plain Python numbers: the same formulas as `transaction_features`
    (the same operations on the same IEEE doubles), without numpy's per-call overhead on the serving path."""
    return _features(
        _SCALARS, {n: _SCALARS.filled(state[n]) for n in STATE_COLUMNS}, int(tx_datetime_us), float(tx_amount)
    )


class _Arrays:
    where = staticmethod(np.where)

    @staticmethod
    def integer(x: np.ndarray) -> np.ndarray:
        return np.asarray(x).astype(np.int64)

    @staticmethod
    def filled(values: Any, length: int) -> np.ndarray:
        """A float64 array of `length` with 0 where the state is missing (None or NaN), as `_Scalars.filled`."""
        array = np.broadcast_to(np.asarray(values, dtype=np.float64), (length,))
        return np.where(np.isnan(array), 0.0, array)


class _Scalars:
    @staticmethod
    def where(condition: bool, then: Any, otherwise: Any) -> Any:
        return then if condition else otherwise

    integer = staticmethod(int)

    @staticmethod
    def filled(value: Any) -> float:
        return 0.0 if value is None or math.isnan(value) else float(value)  # None or NaN: no state


_ARRAYS, _SCALARS = _Arrays(), _Scalars()


def _features(xp: Any, s: dict[str, Any], t: Any, amount: Any) -> dict[str, Any]:
    """The formulas, written once for both backends (`xp`: where, integer)."""
    today_nb, today_amount = _today_so_far(xp, s, t)
    out = {
        "tx_amount": amount,
        "tx_during_weekend": xp.integer((day_of(t) + EPOCH_WEEKDAY) % 7 >= 5),
        "tx_during_night": xp.integer((t % MICROS_PER_DAY) < NIGHT_ENDS_HOUR * MICROS_PER_HOUR),
    }
    for n in CUSTOMER_WINDOWS:
        count = s[f"customer_nb_tx_prev_{n}d"] + today_nb
        avg = _ratio(xp, s[f"customer_amount_prev_{n}d"] + today_amount, count)
        out[f"customer_nb_tx_{n}d"] = xp.integer(count)
        out[f"customer_avg_amount_{n}d"] = avg
        out[f"tx_amount_over_customer_avg_{n}d"] = _ratio(xp, amount, avg)
    for n in TERMINAL_WINDOWS:
        count = s[f"terminal_nb_tx_lagged_{n}d"]
        out[f"terminal_nb_tx_{n}d"] = xp.integer(count)
        out[f"terminal_risk_{n}d"] = _ratio(xp, s[f"terminal_nb_fraud_lagged_{n}d"], count)
    return {name: out[name] for name in FEATURES}


def _today_so_far(xp: Any, s: dict[str, Any], t: Any) -> tuple[Any, Any]:
    """Count and sum of the customer's transactions earlier on the request's day, strictly before t."""
    last = xp.integer(s["customer_today_last_tx_us"])
    same_day = (s["customer_today_nb_tx_at"] > 0) & (day_of(last) == day_of(t))
    include_last = t > last
    nb = xp.where(
        same_day, s["customer_today_nb_tx_before"] + xp.where(include_last, s["customer_today_nb_tx_at"], 0.0), 0.0
    )
    amount = xp.where(
        same_day,
        s["customer_today_amount_before"] + xp.where(include_last, s["customer_today_amount_at"], 0.0),
        0.0,
    )
    return nb, amount


def _ratio(xp: Any, numerator: Any, denominator: Any) -> Any:
    """numerator / denominator, 0 where the denominator is 0."""
    return xp.where(denominator > 0, numerator / xp.where(denominator > 0, denominator, 1.0), 0.0)


# Non-negative, heavy-tailed features (amounts, counts, amount ratios): models see them through log1p.
HEAVY_TAILED = tuple(name for name in FEATURES if name.startswith(("tx_amount", "customer_", "terminal_nb_tx_")))
