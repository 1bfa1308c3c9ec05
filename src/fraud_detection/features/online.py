"""The online engine: feature state kept current one event at a time, for serving and online learning.

It holds, per customer and terminal, daily tiles (counts and sums per UTC day) for the days the windows reach,
each terminal's transactions of those days (time of day, fraud as known), plus each customer's running totals for
today. Events:
- `advance_to(day)`: a new day starts; returns the daily rows every known entity now has (to push online);
- `add_transaction(...)`: after a transaction is scored; returns the customer's new intraday row (to push);
- `add_label(...)`: a label becomes known, `label_delay_days` after the transaction or earlier (an investigation:
  its `known_at`); a label of day `day - label_delay_days` (its lag-0 events), or an early one counting today,
  changes today's terminal row, which it returns (to push).
`state(customer_id, terminal_id)` is what the online store holds for a request, and `features(...)` applies the one
definition to it. Transactions must arrive in time order; a label must arrive when it becomes known.

Serving keeps each customer's intraday totals with `Intraday`; the whole updater is proven equal to the batch
engines (tests/features/test_engine_parity.py, tests/feature_store/test_skew.py) and is what the consumer of the
label stream runs to keep the online store's terminal risk current as labels become known.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from fraud_detection.features.definitions import (
    CUSTOMER_DAILY,
    CUSTOMER_INTRADAY,
    CUSTOMER_WINDOWS,
    MICROS_PER_DAY,
    RUN_WINDOW_DAYS,
    TERMINAL_DAILY,
    TERMINAL_EARLY_LABELS,
    TERMINAL_EDGE_LAGS,
    TERMINAL_EVENTS,
    TERMINAL_RUN,
    TERMINAL_WINDOWS,
    features_of_one,
)


def _covering(windows: tuple[int, ...]) -> dict[int, tuple[int, ...]]:
    """For each age in days (1 = the day before), the positions of the windows that reach back to it."""
    return {age: tuple(i for i, n in enumerate(windows) if n >= age) for age in range(1, max(windows) + 1)}


CUSTOMER_COVERING, TERMINAL_COVERING = _covering(CUSTOMER_WINDOWS), _covering(TERMINAL_WINDOWS)
NO_RUN = dict.fromkeys(TERMINAL_RUN, 0)
RUN_WINDOW = TERMINAL_WINDOWS.index(RUN_WINDOW_DAYS)  # the terminal window over the fraud run's days
CUSTOMER_NAMES = tuple((f"customer_nb_tx_prev_{n}d", f"customer_amount_prev_{n}d", f"customer_amount_sq_prev_{n}d")
                       for n in CUSTOMER_WINDOWS)  # fmt: skip
TERMINAL_COUNT_NAMES = tuple(
    (f"terminal_nb_tx_lagged_{n}d", f"terminal_nb_fraud_lagged_{n}d") for n in TERMINAL_WINDOWS
)


@dataclass
class Intraday:
    """A customer's transactions so far on `day` (count, amount sum, sum of squared amounts): those before the
    latest time `last_us`, and those at it."""

    day: int
    nb_before: int = 0
    amount_before: float = 0.0
    amount_sq_before: float = 0.0
    nb_at: int = 0
    amount_at: float = 0.0
    amount_sq_at: float = 0.0
    last_us: int = 0

    def add(self, tx_us: int, amount: float) -> None:
        if self.nb_at and tx_us == self.last_us:
            self.nb_at += 1
            self.amount_at += amount
            self.amount_sq_at += amount * amount
            return
        self.nb_before += self.nb_at
        self.amount_before += self.amount_at
        self.amount_sq_before += self.amount_sq_at
        self.nb_at, self.amount_at, self.amount_sq_at, self.last_us = 1, amount, amount * amount, tx_us

    @classmethod
    def from_row(cls, day: int, row: dict[str, Any]) -> Intraday:
        """A customer's stored intraday row (`CUSTOMER_INTRADAY` names), if it is of `day`; else a fresh day."""
        last_us = row.get("customer_today_last_tx_us") if row else None
        if last_us is None or int(last_us) // MICROS_PER_DAY != day:
            return cls(day)
        return cls(
            day,
            int(row["customer_today_nb_tx_before"] or 0),
            float(row["customer_today_amount_before"] or 0),
            float(row["customer_today_amount_sq_before"] or 0),
            int(row["customer_today_nb_tx_at"] or 0),
            float(row["customer_today_amount_at"] or 0),
            float(row["customer_today_amount_sq_at"] or 0),
            int(last_us),
        )

    def values(self) -> tuple[float | int, ...]:
        """The row's values, in `CUSTOMER_INTRADAY` order."""
        return (self.nb_before, self.amount_before, self.amount_sq_before, self.nb_at, self.amount_at,
                self.amount_sq_at, self.last_us)  # fmt: skip

    def row(self) -> dict[str, float | int]:
        return dict(zip(CUSTOMER_INTRADAY, self.values(), strict=True))


@dataclass
class OnlineFeatureUpdater:
    label_delay_days: int
    day: int | None = None
    customer_tiles: dict[int, dict[int, list[float]]] = field(default_factory=lambda: defaultdict(dict))
    terminal_tiles: dict[int, dict[int, list[int]]] = field(default_factory=lambda: defaultdict(dict))
    terminal_events: dict[int, dict[int, list[list[float]]]] = field(default_factory=lambda: defaultdict(dict))
    early_labels: dict[int, list[tuple[int, int, float]]] = field(default_factory=lambda: defaultdict(list))
    customer_daily: dict[int, dict[str, float]] = field(default_factory=dict)
    terminal_daily: dict[int, dict[str, float]] = field(default_factory=dict)
    intraday: dict[int, Intraday] = field(default_factory=dict)
    kept_from: int | None = None  # no tile or event is older than this day (None: not known yet)

    def advance_to(self, day: int) -> tuple[dict[int, dict], dict[int, dict]]:
        """Start `day`: recompute every known entity's daily state; returns (customer rows, terminal rows)."""
        if self.day is not None and day < self.day:
            raise ValueError(f"day {day} is before the current day {self.day}: events must come in time order")
        self.day = day
        self._forget_before(self._oldest_kept())
        self.customer_daily = {c: self._customer_row(tiles, day) for c, tiles in self.customer_tiles.items()}
        self.terminal_daily = {k: self._terminal_row(k, day) for k in self.terminal_tiles}
        return self.customer_daily, self.terminal_daily

    def refresh(self) -> tuple[dict[int, dict], dict[int, dict]]:
        """The current day's daily rows again, for the entities the day started with: after labels of older days
        arrived late (a consumer catching up). Returns (customer rows, terminal rows)."""
        self.customer_daily = {c: self._customer_row(self.customer_tiles[c], self.day) for c in self.customer_daily}
        self.terminal_daily = {k: self._terminal_row(k, self.day) for k in self.terminal_daily}
        return self.customer_daily, self.terminal_daily

    def add_transaction(self, customer_id: int, terminal_id: int, tx_us: int, amount: float) -> dict:
        """Record a scored transaction; returns the customer's new intraday row."""
        day = tx_us // MICROS_PER_DAY
        if day != self.day:
            raise ValueError(f"transaction of day {day} while the updater is on day {self.day}: call advance_to first")
        tile = self.customer_tiles[customer_id].setdefault(day, [0, 0.0, 0.0])
        tile[0] += 1
        tile[1] += amount
        tile[2] += amount * amount
        self.terminal_tiles[terminal_id].setdefault(day, [0, 0])[0] += 1
        self.terminal_events[terminal_id].setdefault(day, []).append([float(tx_us % MICROS_PER_DAY), 0.0])
        today = self.intraday.get(customer_id)
        if today is None or today.day != day:
            today = self.intraday[customer_id] = Intraday(day)
        today.add(tx_us, amount)
        return today.row()

    def add_label(self, terminal_id: int, tx_us: int, fraud: int, known_us: int | None = None) -> dict[str, Any] | None:
        """A transaction's label is known (at `known_us`; None: `label_delay_days` after the transaction): it counts
        in its terminal's risk from now on, at once when it came early. Returns the terminal's daily row when the
        label changed it (an early label counting today, or a fraud of day `day - label_delay_days`), else None."""
        day = tx_us // MICROS_PER_DAY
        if self.day is not None and day < self._oldest_kept():  # beyond every window: it can change nothing
            return None
        changed = False
        from_us, until_us = max(known_us if known_us is not None else tx_us, tx_us), self._until_us(tx_us)
        if from_us < until_us:  # known before its transaction enters the window
            self.early_labels[terminal_id].append((from_us, until_us, float(fraud)))
            changed = self.day is not None and self._meets(from_us, until_us, self.day)
        self.terminal_tiles[terminal_id].setdefault(day, [0, 0])[1] += int(fraud)
        event = next((e for e in self.terminal_events[terminal_id].get(day, [])
                      if e[0] == tx_us % MICROS_PER_DAY and e[1] == 0.0), None)  # fmt: skip
        if fraud and event is not None:
            event[1] = 1.0
            changed |= self.day is not None and terminal_id in self.terminal_daily and day == self.today_lag_0()
        if not changed:
            return None
        self.terminal_daily[terminal_id] = self._terminal_row(terminal_id, self.day)
        return self.terminal_daily[terminal_id]

    def state(self, customer_id: int, terminal_id: int) -> dict[str, Any]:
        """The stored state a request for this customer and terminal reads (None where unknown)."""
        customer = self.customer_daily.get(customer_id, {})
        today = self.intraday.get(customer_id)
        intraday = today.row() if today else {}
        terminal = self.terminal_daily.get(terminal_id, {})
        return {
            **{name: customer.get(name) for name in CUSTOMER_DAILY},
            **{name: intraday.get(name) for name in CUSTOMER_INTRADAY},
            **{name: terminal.get(name) for name in TERMINAL_DAILY},
        }

    def features(self, customer_id: int, terminal_id: int, tx_us: int, amount: float) -> dict[str, float]:
        """The features of a transaction about to be scored (before `add_transaction`)."""
        return features_of_one(self.state(customer_id, terminal_id), tx_us, amount)

    def _customer_row(self, tiles: dict[int, list[float]], day: int) -> dict[str, float]:
        """One pass over the days with a tile, in ascending order: each window sums its days in that order from 0,
        as a sum of the window alone would (floating-point sums depend on the order)."""
        sums = [[0, 0, 0] for _ in CUSTOMER_WINDOWS]
        oldest = day - max(CUSTOMER_WINDOWS)
        for d in sorted(d for d in tiles if oldest <= d < day):
            tile = tiles[d]
            for i in CUSTOMER_COVERING[day - d]:
                window = sums[i]
                window[0] += tile[0]
                window[1] += tile[1]
                window[2] += tile[2]
        return {name: value for names, values in zip(CUSTOMER_NAMES, sums, strict=True)
                for name, value in zip(names, values, strict=True)}  # fmt: skip

    def _terminal_row(self, terminal_id: int, day: int) -> dict[str, Any]:
        tiles, events = self.terminal_tiles[terminal_id], self.terminal_events[terminal_id]
        row: dict[str, Any] = {}
        end = day - self.label_delay_days
        counts = [[0, 0] for _ in TERMINAL_WINDOWS]  # whole numbers: any order gives the same sums
        oldest = end - max(TERMINAL_WINDOWS)
        for d, tile in tiles.items():
            if oldest <= d < end:
                for i in TERMINAL_COVERING[end - d]:
                    window = counts[i]
                    window[0] += tile[0]
                    window[1] += tile[1]
        for (nb_name, frauds_name), (nb, frauds) in zip(TERMINAL_COUNT_NAMES, counts, strict=True):
            row[nb_name], row[frauds_name] = nb, frauds
        # the run's days are the longest window's, whose labels are all known: no fraud there, no run
        row |= self._fraud_run(events, end) if counts[RUN_WINDOW][1] else NO_RUN
        for k, name in zip(TERMINAL_EDGE_LAGS, TERMINAL_EVENTS, strict=True):  # [time of day, fraud, ...] in time
            row[name] = [value for e in sorted(events.get(end - k, ())) for value in e]  # order, as batch engines
        labels = self.early_labels.get(terminal_id)
        if not labels:
            return row | {name: [] for name in TERMINAL_EARLY_LABELS}
        start = day * MICROS_PER_DAY
        early = [(f, u, fraud) for f, u, fraud in labels if self._meets(f, u, day)]
        froms = sorted((float(max(f - start, 0)), fraud) for f, _, fraud in early)
        untils = sorted((float(u - start), fraud) for _, u, fraud in early if u - start < MICROS_PER_DAY)
        for name, pairs in zip(TERMINAL_EARLY_LABELS, (froms, untils), strict=True):
            row[name] = [value for pair in pairs for value in pair]
        return row

    @staticmethod
    def _fraud_run(events: dict[int, list[list[float]]], end: int) -> dict[str, int]:
        """`TERMINAL_RUN` of days end - RUN_WINDOW_DAYS .. end - 1 (all their labels known): the frauds at or after
        the latest genuine transaction, times as microseconds before day `end` starts. The days are read from the
        latest back: every time of a day is later than any of the day before, so the run ends in the first day with
        a genuine transaction, and the latest fraud is in the first day with a fraud."""
        run: list[int] = []
        run_ended, latest_fraud = False, None
        for d in range(end - 1, end - RUN_WINDOW_DAYS - 1, -1):
            day_events = events.get(d)
            if not day_events:
                continue
            start = (end - d) * MICROS_PER_DAY
            frauds = [start - int(tod) for tod, fraud in day_events if fraud]
            if frauds and latest_fraud is None:
                latest_fraud = min(frauds)
            if not run_ended:
                genuine = [start - int(tod) for tod, fraud in day_events if not fraud]
                if genuine:  # the latest genuine transaction is this day's least time before `end`
                    latest_genuine, run_ended = min(genuine), True
                    frauds = [before for before in frauds if before <= latest_genuine]
                run.extend(frauds)
            if run_ended and latest_fraud is not None:
                break
        latest = latest_fraud if latest_fraud is not None else 0
        return dict(zip(TERMINAL_RUN, (len(run), max(run, default=0), latest), strict=True))

    def today_lag_0(self) -> int:
        """The day whose transactions enter the terminal windows today (`day - label_delay_days`)."""
        return self.day - self.label_delay_days

    def _until_us(self, tx_us: int) -> int:
        """When a transaction enters its terminal's window (and a label known early stops counting as early)."""
        return tx_us + self.label_delay_days * MICROS_PER_DAY

    @staticmethod
    def _meets(from_us: int, until_us: int, day: int) -> bool:
        """Whether an early label counting over [from_us, until_us) counts at some time of `day`."""
        return from_us < (day + 1) * MICROS_PER_DAY and until_us > day * MICROS_PER_DAY

    def _oldest_kept(self) -> int:
        """The oldest day kept: before it, no window reaches (the customer windows D - 30, the terminal windows and
        the fraud run D - delay - 30)."""
        return self.day - max(CUSTOMER_WINDOWS) - max(TERMINAL_WINDOWS) - self.label_delay_days - 1

    def _forget_before(self, oldest_day: int) -> None:
        """Drop the tiles and events of days before `oldest_day` (after the first time, only the days that aged out
        since: no later event adds an older day), and the early labels that no longer count."""
        entities = (*self.customer_tiles.values(), *self.terminal_tiles.values(), *self.terminal_events.values())
        if self.kept_from is None:
            for tiles in entities:
                for d in [d for d in tiles if d < oldest_day]:
                    del tiles[d]
        else:
            aged = range(self.kept_from, oldest_day)
            for tiles in entities:
                for d in aged:
                    tiles.pop(d, None)
        self.kept_from = oldest_day if self.kept_from is None else max(self.kept_from, oldest_day)
        today = self.day * MICROS_PER_DAY
        for terminal_id, early in list(self.early_labels.items()):
            kept = [label for label in early if label[1] > today]
            if kept:
                self.early_labels[terminal_id] = kept
            else:
                del self.early_labels[terminal_id]


def updater_from_history(transactions: pl.DataFrame, label_delay_days: int, now_us: int,
                         label_events: pl.DataFrame | None = None) -> tuple[
    OnlineFeatureUpdater, list[tuple[int, int, int, int]]
]:  # fmt: skip
    """The updater as if it had seen every transaction before `now_us` (a day's start) and the labels known by then,
    built in one pass instead of a replay. A transaction's label is known `label_delay_days` after it, or at its first
    event of `label_events` (transaction_id, known_at) when that is earlier. Returns the updater, on no day yet (the
    caller's `advance_to` computes the daily rows), and the labels still unknown at `now_us` that will change it
    (frauds, and early labels), as (known_us, terminal_id, tx_us, tx_fraud) in time order, for the caller to
    `add_label` when they become known. `transactions` needs customer_id, terminal_id, tx_datetime, tx_amount,
    tx_fraud (and transaction_id with `label_events`)."""
    if now_us % MICROS_PER_DAY:
        raise ValueError(f"now_us={now_us} is not a day's start (UTC midnight in epoch microseconds)")
    delay_us, day = label_delay_days * MICROS_PER_DAY, now_us // MICROS_PER_DAY
    oldest = day - max(CUSTOMER_WINDOWS) - max(TERMINAL_WINDOWS) - label_delay_days - 1
    tx = (
        _with_first_known_us(transactions.lazy(), label_events)
        .select(
            "customer_id",
            "terminal_id",
            "tx_amount",
            "tx_fraud",
            "known_us",
            tx_us=pl.col("tx_datetime").dt.epoch("us"),
        )
        .filter((pl.col("tx_us") < now_us) & (pl.col("tx_us") >= oldest * MICROS_PER_DAY))
        .with_columns(
            day=pl.col("tx_us") // MICROS_PER_DAY,
            tod=pl.col("tx_us") % MICROS_PER_DAY,
            known_us=pl.min_horizontal(
                pl.max_horizontal(pl.col("known_us").fill_null(pl.col("tx_us") + delay_us), "tx_us"),
                pl.col("tx_us") + delay_us,
            ),
        )
        .with_columns(
            known=(pl.col("tx_fraud") == 1) & (pl.col("known_us") <= now_us),
            early=pl.col("known_us") < pl.col("tx_us") + delay_us,
        )
        .sort("tx_us")
        .collect()
    )
    updater = OnlineFeatureUpdater(label_delay_days)
    # Every entity of the kept days has a daily row; tiles and events only of the days a window reads from today on
    updater.customer_tiles.update((c, {}) for c in tx["customer_id"].unique().to_list())
    updater.terminal_tiles.update((k, {}) for k in tx["terminal_id"].unique().to_list())
    amount, read = pl.col("tx_amount"), pl.col("day") >= day - max(CUSTOMER_WINDOWS)
    customer = (
        tx.filter(read).group_by("customer_id", "day").agg(pl.len(), amount.sum(), (amount * amount).sum().alias("sq"))
    )
    for c, d, *tile in zip(*(column.to_list() for column in customer.get_columns()), strict=True):
        updater.customer_tiles[c][d] = tile
    recent = tx.filter(pl.col("day") >= day - label_delay_days - max(TERMINAL_WINDOWS))  # the fraud run's days too
    terminal = recent.group_by("terminal_id", "day").agg(pl.len(), pl.col("known").sum())
    for k, d, *tile in zip(*(column.to_list() for column in terminal.get_columns()), strict=True):
        updater.terminal_tiles[k][d] = tile
    # each terminal's day of events: one slice of the events sorted by terminal and day
    recent = recent.sort("terminal_id", "day", "tx_us")
    terminals, days = recent["terminal_id"].to_numpy(), recent["day"].to_numpy()
    starts = np.flatnonzero(np.diff(terminals, prepend=-1) | np.diff(days, prepend=-1))
    pairs = list(map(list, zip(*(recent[c].cast(pl.Float64).to_list() for c in ("tod", "known")), strict=True)))
    events = updater.terminal_events
    for k, d, start, end in zip(terminals[starts].tolist(), days[starts].tolist(), starts.tolist(),
                                [*starts[1:].tolist(), len(pairs)], strict=True):  # fmt: skip
        events[k][d] = pairs[start:end]
    early = tx.filter(pl.col("early") & (pl.col("known_us") <= now_us) & (pl.col("tx_us") + delay_us > now_us))
    for k, known_us, us, fraud in early.select("terminal_id", "known_us", "tx_us", "tx_fraud").iter_rows():
        updater.early_labels[k].append((known_us, us + delay_us, float(fraud)))
    unknown = tx.filter((pl.col("known_us") > now_us) & ((pl.col("tx_fraud") == 1) | pl.col("early")))
    columns = ("known_us", "terminal_id", "tx_us", "tx_fraud")
    return updater, sorted(unknown.select(columns).iter_rows())


def _with_first_known_us(transactions: pl.LazyFrame, label_events: pl.DataFrame | None) -> pl.LazyFrame:
    """The transactions with `known_us`: when their first label event made them known (null without one)."""
    if label_events is None or label_events.is_empty():
        return transactions.with_columns(known_us=pl.lit(None, dtype=pl.Int64))
    first = label_events.lazy().group_by("transaction_id").agg(known_us=pl.col("known_at").min().dt.epoch("us"))
    return transactions.join(first, on="transaction_id", how="left", maintain_order="left")
