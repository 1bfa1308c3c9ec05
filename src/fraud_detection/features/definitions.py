"""The one definition of every feature the model sees.

Time is cut into UTC days. For a transaction at time t on day D by customer c at terminal k:

- customer windows (N = 1, 7, 30): c's transactions on the N whole days before D, plus c's transactions earlier on
  day D (strictly before t: the transaction being scored, and any at the very same instant, are not counted);
  `customer_nb_tx_Nd` counts them, `customer_avg_amount_Nd` is their mean amount and `customer_std_amount_Nd` their
  standard deviation (population; 0 when there are none);
- terminal windows (N = 1, 7, 30): k's transactions at times in (t - delay - N days, t - delay], `label_delay_days`
  before the transaction, so that every label in the window is known at t (the handbook's definition, 3.3.3);
  `terminal_nb_tx_Nd` counts them. `terminal_risk_Nd` is the fraud rate of the labels known at t among k's
  transactions in (t - delay - N days, t]: the window's, plus those of the last `delay` days whose label became known
  early (an investigation; a label event's `known_at`). Without early labels (historical data: every label known
  `delay` after its transaction) it is the window's fraud rate, the handbook's; 0 when there are no labels;
- the terminal's fraud run, over its transactions of the whole days D - delay - 30 .. D - delay - 1 and of day
  D - delay up to t's time of day (labels known by t, in time order, a fraud after a genuine transaction at the same
  instant): `terminal_fraud_run_length` counts the frauds after its latest genuine transaction (all of them when it
  has none), `terminal_fraud_run_days` is the time from the first of those frauds to t - delay (the window's end),
  in days, and `terminal_days_since_fraud` the time from its latest fraud to t - delay; both are
  `NO_FRAUD_DAYS` (beyond any time in the window) when there is none. A compromised terminal (scenario 2) turns
  every transaction into a fraud for a few weeks: a run of frauds says it is compromised now, its age how long
  it has been, and a genuine transaction after frauds that it has recovered;
- request-time features, computed from the request and the stored features: `tx_amount`, `tx_during_weekend`
  (Saturday or Sunday, UTC), `tx_during_night` (before 06:00 UTC), `tx_amount_over_customer_avg_Nd` (the amount
  divided by the customer's mean amount in the window; 0 when the customer has no transaction in it),
  `tx_amount_zscore_customer_Nd` (the amount less the customer's mean, over their standard deviation, in the
  window; 0 when the deviation is 0).

Windows over whole days ("day tiles") keep every engine exact and cheap: the stored state is a few counts and
sums per entity and day, and the online path only has to keep today's running totals. The terminal windows are exact
rolling windows all the same (they carry most of the model's signal: reports/quality/suspects.csv): a window
(t - delay - N, t - delay] is the N whole days D - delay - N .. D - delay - 1, less the transactions of its first day
at or before t's time of day, plus those of day D - delay at or before it; so each terminal's daily row also holds
the transactions of those edge days. The stored state:

- `customer_daily`, per customer and day D (stamped D 00:00 UTC): count, amount sum and sum of squared amounts
  over the N days before D;
- `customer_intraday`, per customer, as of its latest transaction time s on day D: count, sum and sum of squares
  of the day's amounts before s and at s, and s itself (so that a request at s sees only what came strictly before it).
  The feature store holds these seven values as one feature, `customer_today_state` (a list of doubles in
  `CUSTOMER_INTRADAY` order: `pack_intraday`, `unpack_intraday`), because serving reads and writes this view on
  every transaction and a store keeps a row per feature: one row a customer instead of seven;
- `terminal_daily`, per terminal and day D: count and frauds over days D - delay - N .. D - delay - 1, and the
  transactions of days D - delay - k for k = 0, 1, 7, 30 (`terminal_events_lag_{k}d`: a list of [time of day in
  microseconds, fraud] pairs in time order, fraud as known: a label reaches the lag-0 list during day D, as it
  becomes known); the labels known early that count on day D (`terminal_early_labels_from` / `_until`, below); and
  the fraud run of days D - delay - 30 .. D - delay - 1 (`terminal_fraud_run_nb_lagged`, and the times of its first
  fraud and of the latest fraud as microseconds before day D - delay starts, `terminal_fraud_run_start_lagged_us`,
  `terminal_last_fraud_lagged_us`; 0 when there is none), which the lag-0 events extend up to t.

A label of a transaction at s known early, at k < s + delay, counts for t in [max(k, s), s + delay): from then on
the transaction is in the window, with its label. Each daily row it meets lists a "from" event [max(k, s) - D 00:00
or 0, fraud] and, on the day it stops counting, an "until" event [its time of day, fraud]: the labels counting at
t are the "from" events up to t's time of day less the "until" events up to it, the same lookup as the edge days'.

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
VARIANCE_ROUNDING = 1e-12  # a variance below this share of the squared mean is rounding (equal amounts): 0

# Stored state, by feature view.
CUSTOMER_DAILY = (
    *(f"customer_nb_tx_prev_{n}d" for n in CUSTOMER_WINDOWS),
    *(f"customer_amount_prev_{n}d" for n in CUSTOMER_WINDOWS),
    *(f"customer_amount_sq_prev_{n}d" for n in CUSTOMER_WINDOWS),
)
CUSTOMER_INTRADAY = (
    "customer_today_nb_tx_before",
    "customer_today_amount_before",
    "customer_today_amount_sq_before",
    "customer_today_nb_tx_at",
    "customer_today_amount_at",
    "customer_today_amount_sq_at",
    "customer_today_last_tx_us",  # last: the time the row is of
)
INTRADAY_STATE = "customer_today_state"  # the stored form of CUSTOMER_INTRADAY (counts and the time exact: < 2**53)
TERMINAL_COUNTS = tuple(f"terminal_nb_tx_lagged_{n}d" for n in TERMINAL_WINDOWS) + tuple(
    f"terminal_nb_fraud_lagged_{n}d" for n in TERMINAL_WINDOWS
)
TERMINAL_RUN = ("terminal_fraud_run_nb_lagged", "terminal_fraud_run_start_lagged_us", "terminal_last_fraud_lagged_us")
RUN_WINDOW_DAYS = max(TERMINAL_WINDOWS)  # the whole days before D - delay the fraud run looks back over
NO_FRAUD_DAYS = float(RUN_WINDOW_DAYS + 2)  # the run's ages when there is no fraud: beyond any age in the window
TERMINAL_EDGE_LAGS = (0, *TERMINAL_WINDOWS)  # days before D - delay whose transactions a daily row lists
TERMINAL_EVENTS = tuple(f"terminal_events_lag_{k}d" for k in TERMINAL_EDGE_LAGS)  # [tod_us, fraud, tod_us, ...]
TERMINAL_EARLY_LABELS = ("terminal_early_labels_from", "terminal_early_labels_until")  # [tod_us, fraud, ...]
TERMINAL_LISTS = TERMINAL_EVENTS + TERMINAL_EARLY_LABELS
TERMINAL_DAILY = TERMINAL_COUNTS + TERMINAL_RUN + TERMINAL_LISTS
LIST_STATE = TERMINAL_LISTS  # state columns holding a list per entity (the rest hold numbers)
STATE_COLUMNS = CUSTOMER_DAILY + CUSTOMER_INTRADAY + TERMINAL_DAILY
NUMBER_STATE = tuple(name for name in STATE_COLUMNS if name not in LIST_STATE)

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
    *(f"customer_std_amount_{n}d" for n in CUSTOMER_WINDOWS),
    *(f"tx_amount_zscore_customer_{n}d" for n in CUSTOMER_WINDOWS),
    "terminal_fraud_run_length",
    "terminal_fraud_run_days",
    "terminal_days_since_fraud",
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

    `state` maps each name of NUMBER_STATE to an array (None/NaN where the entity is unknown) and each name of
    LIST_STATE to a sequence of lists (None where unknown) or an `EventLists`.
    """
    t = np.asarray(tx_datetime_us, dtype=np.int64)
    filled = {n: _ARRAYS.filled(state[n], len(t)) for n in NUMBER_STATE}
    lists = {n: EventLists.of(state[n], len(t)) for n in LIST_STATE}
    return _features(_ARRAYS, filled | lists, t, np.asarray(tx_amount, dtype=np.float64))


def features_of_one(state: Mapping[str, Any], tx_datetime_us: int, tx_amount: float) -> dict[str, int | float]:
    """The features of one transaction, in plain Python numbers: the same formulas as `transaction_features`
    (the same operations on the same IEEE doubles), without numpy's per-call overhead on the serving path."""
    filled = {n: _SCALARS.filled(state[n]) for n in NUMBER_STATE} | {n: state[n] or () for n in LIST_STATE}
    return _features(_SCALARS, filled, int(tx_datetime_us), float(tx_amount))


class EventLists:
    """Many rows' event lists ([time of day, fraud, ...] each) as one flat array of pairs and each pair's row."""

    def __init__(self, lengths: np.ndarray, flat: np.ndarray) -> None:
        if lengths.sum() != len(flat) or len(flat) % 2:
            raise ValueError(f"event lists of {int(lengths.sum())} values for {len(flat)} given; expected pairs")
        self.rows = np.repeat(np.arange(len(lengths)), np.asarray(lengths) // 2)
        self.pairs = np.asarray(flat, dtype=np.float64).reshape(-1, 2)
        self.length = len(lengths)

    @classmethod
    def of(cls, lists: Any, length: int) -> EventLists:
        """From a sequence of lists (None: no events) or an EventLists already built."""
        if isinstance(lists, EventLists):
            return lists
        values = [() if v is None else v for v in lists]
        lengths = np.fromiter((len(v) for v in values), dtype=np.int64, count=length)
        flat = np.concatenate([np.asarray(v, dtype=np.float64) for v in values]) if lengths.any() else np.zeros(0)
        return cls(lengths, flat)


class _Arrays:
    where = staticmethod(np.where)
    sqrt = staticmethod(np.sqrt)

    @staticmethod
    def events_up_to(lists: EventLists, time_of_day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row: the number of its events at or before its time of day, and how many of them are frauds."""
        kept = lists.pairs[:, 0] <= time_of_day[lists.rows]
        rows, frauds = lists.rows[kept], lists.pairs[kept, 1]
        return (np.bincount(rows, minlength=lists.length).astype(np.float64),
                np.bincount(rows, weights=frauds, minlength=lists.length))  # fmt: skip

    @staticmethod
    def run_up_to(lists: EventLists, time_of_day: np.ndarray) -> tuple[np.ndarray, ...]:
        """Per row, among its events at or before its time of day: whether one is genuine, the number of frauds at
        or after the latest genuine one (all when none is), the first of those frauds' time and the latest fraud's
        time (-1 when there is none)."""
        n, rows, tod = lists.length, lists.rows, lists.pairs[:, 0]
        kept = tod <= time_of_day[rows]
        fraud, genuine = kept & (lists.pairs[:, 1] > 0), kept & (lists.pairs[:, 1] == 0)
        latest_genuine = np.full(n, -1.0)
        np.maximum.at(latest_genuine, rows[genuine], tod[genuine])
        run = fraud & (tod >= latest_genuine[rows])
        first = np.full(n, np.inf)
        np.minimum.at(first, rows[run], tod[run])
        latest_fraud = np.full(n, -1.0)
        np.maximum.at(latest_fraud, rows[fraud], tod[fraud])
        return (latest_genuine >= 0, np.bincount(rows[run], minlength=n).astype(np.float64),
                np.where(np.isinf(first), -1.0, first), latest_fraud)  # fmt: skip

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

    @staticmethod
    def events_up_to(events: Any, time_of_day: int) -> tuple[float, float]:
        nb = frauds = 0.0
        for i in range(0, len(events) - 1, 2):
            if events[i] <= time_of_day:
                nb, frauds = nb + 1.0, frauds + events[i + 1]
        return nb, frauds

    @staticmethod
    def run_up_to(events: Any, time_of_day: int) -> tuple[bool, float, float, float]:
        latest_genuine = latest_fraud = -1.0
        for i in range(0, len(events) - 1, 2):
            if events[i] <= time_of_day:
                if events[i + 1] > 0:
                    latest_fraud = max(latest_fraud, events[i])
                else:
                    latest_genuine = max(latest_genuine, events[i])
        nb, first = 0.0, -1.0
        for i in range(0, len(events) - 1, 2):
            if events[i + 1] > 0 and latest_genuine <= events[i] <= time_of_day:
                nb, first = nb + 1.0, events[i] if first < 0 else min(first, events[i])
        return latest_genuine >= 0, nb, first, latest_fraud

    sqrt = staticmethod(math.sqrt)

    integer = staticmethod(int)

    @staticmethod
    def filled(value: Any) -> float:
        return 0.0 if value is None or math.isnan(value) else float(value)  # None or NaN: no state


_ARRAYS, _SCALARS = _Arrays(), _Scalars()


def _features(xp: Any, s: dict[str, Any], t: Any, amount: Any) -> dict[str, Any]:
    """The formulas, written once for both backends (`xp`: where, integer, sqrt, events_up_to, run_up_to)."""
    today_nb, today_amount, today_sq = _today_so_far(xp, s, t)
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
        variance = _ratio(xp, s[f"customer_amount_sq_prev_{n}d"] + today_sq, count) - avg * avg
        std = xp.sqrt(xp.where(variance > VARIANCE_ROUNDING * avg * avg, variance, 0.0))
        out[f"customer_std_amount_{n}d"] = std
        out[f"tx_amount_zscore_customer_{n}d"] = _ratio(xp, amount - avg, std)
    # (t - delay - N, t - delay]: the whole days D-delay-N .. D-delay-1, less the events of the first of them up to
    # t's time of day, plus those of day D-delay up to it
    time_of_day = t % MICROS_PER_DAY
    end_nb, end_frauds = xp.events_up_to(s["terminal_events_lag_0d"], time_of_day)
    from_nb, from_frauds = xp.events_up_to(s["terminal_early_labels_from"], time_of_day)
    until_nb, until_frauds = xp.events_up_to(s["terminal_early_labels_until"], time_of_day)
    early_nb, early_frauds = from_nb - until_nb, from_frauds - until_frauds  # known early, not yet in the window
    for n in TERMINAL_WINDOWS:
        start_nb, start_frauds = xp.events_up_to(s[f"terminal_events_lag_{n}d"], time_of_day)
        count = s[f"terminal_nb_tx_lagged_{n}d"] - start_nb + end_nb
        frauds = s[f"terminal_nb_fraud_lagged_{n}d"] - start_frauds + end_frauds
        out[f"terminal_nb_tx_{n}d"] = xp.integer(count)
        out[f"terminal_risk_{n}d"] = _ratio(xp, frauds + early_frauds, count + early_nb)
    out |= _fraud_run(xp, s, time_of_day)
    return {name: out[name] for name in FEATURES}


def _fraud_run(xp: Any, s: dict[str, Any], time_of_day: Any) -> dict[str, Any]:
    """The terminal's fraud run: the whole days' (stored) extended by day D - delay's events up to t's time of day;
    ages from t - delay, whose time of day is t's."""
    restarts, nb, first, latest = xp.run_up_to(s["terminal_events_lag_0d"], time_of_day)
    stored_nb = s["terminal_fraud_run_nb_lagged"]
    length = xp.where(restarts, nb, stored_nb + nb)
    first_age = xp.where(
        restarts | (stored_nb == 0), time_of_day - first, time_of_day + s["terminal_fraud_run_start_lagged_us"]
    )
    latest_age = xp.where(latest >= 0, time_of_day - latest, time_of_day + s["terminal_last_fraud_lagged_us"])
    any_fraud = (latest >= 0) | (s["terminal_last_fraud_lagged_us"] > 0)
    return {
        "terminal_fraud_run_length": xp.integer(length),
        "terminal_fraud_run_days": xp.where(length > 0, first_age / MICROS_PER_DAY, NO_FRAUD_DAYS),
        "terminal_days_since_fraud": xp.where(any_fraud, latest_age / MICROS_PER_DAY, NO_FRAUD_DAYS),
    }


def _today_so_far(xp: Any, s: dict[str, Any], t: Any) -> tuple[Any, Any, Any]:
    """Count, amount sum and sum of squares of the customer's transactions earlier on the request's day, strictly
    before t."""
    last = xp.integer(s["customer_today_last_tx_us"])
    same_day = (s["customer_today_nb_tx_at"] > 0) & (day_of(last) == day_of(t))
    include_last = t > last

    def so_far(before: str, at: str) -> Any:
        return xp.where(same_day, s[before] + xp.where(include_last, s[at], 0.0), 0.0)

    return (
        so_far("customer_today_nb_tx_before", "customer_today_nb_tx_at"),
        so_far("customer_today_amount_before", "customer_today_amount_at"),
        so_far("customer_today_amount_sq_before", "customer_today_amount_sq_at"),
    )


def _ratio(xp: Any, numerator: Any, denominator: Any) -> Any:
    """numerator / denominator, 0 where the denominator is 0."""
    return xp.where(denominator > 0, numerator / xp.where(denominator > 0, denominator, 1.0), 0.0)


# Non-negative, heavy-tailed features (amounts, counts, amount ratios): models see them through log1p.
HEAVY_TAILED = tuple(
    name
    for name in FEATURES
    if name.startswith(("tx_amount", "customer_", "terminal_nb_tx_", "terminal_fraud_run_length"))
    and "zscore" not in name
)
