"""The batch engine: the stored feature state of every entity and day, and every transaction's features, on polars.

`state_tables` gives the three tables Feast serves (see definitions.py); `transaction_features` joins them to the
transactions exactly as a point-in-time lookup would and applies the one definition of the features. The label events
(the label stream as a table) bring the labels known before the delay; without them every label is known
`label_delay_days` after its transaction.

Both also come in parts, so that memory grows with a part, not the data: every state is one customer's or one
terminal's, so the state tables are made a range of customers (terminals) at a time; every transaction's features
read the state of its own day, so they are made a range of days at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import polars as pl

from fraud_detection.features.definitions import (
    CUSTOMER_INTRADAY,
    CUSTOMER_WINDOWS,
    INTRADAY_STATE,
    LIST_STATE,
    MICROS_PER_DAY,
    NUMBER_STATE,
    RUN_WINDOW_DAYS,
    TERMINAL_EARLY_LABELS,
    TERMINAL_EDGE_LAGS,
    TERMINAL_WINDOWS,
    EventLists,
)
from fraud_detection.features.definitions import (
    transaction_features as compute_features,
)
from fraud_detection.runtime.frame_parts import FrameParts, value_ranges, weighted_ranges

EVENT_TIMESTAMP = "event_timestamp"
UTC_MICROS = pl.Datetime("us", "UTC")
LABEL_COLUMNS = ("transaction_id", "tx_datetime", "customer_id", "terminal_id", "tx_fraud")


class StateTables(NamedTuple):
    customer_daily: pl.DataFrame
    customer_intraday: pl.DataFrame
    terminal_daily: pl.DataFrame


def state_tables(
    transactions: pl.DataFrame, label_delay_days: int, label_events: pl.DataFrame | None = None
) -> StateTables:
    """Feature state for every customer and terminal seen, for each day from the first to the day after the last;
    `label_events` (transaction_id, tx_fraud, known_at) bring the labels known early."""
    parts = state_table_parts(transactions, label_delay_days, label_events, parts=1)
    return StateTables(*(table.collect() for table in parts))


def state_table_parts(
    transactions: pl.DataFrame, label_delay_days: int, label_events: pl.DataFrame | None, parts: int
) -> StateTables:
    """`state_tables` as `FrameParts`, `parts` ranges of customers (terminals) each: the same rows in the same
    order (by entity, then time)."""
    tx = _with_day(transactions)
    days = pl.int_range(tx["day"].min(), tx["day"].max() + 2, eager=True).alias("day")
    early = early_labels(transactions, label_events, label_delay_days)

    def by_range(key: str, table: Callable[[pl.DataFrame], pl.DataFrame]) -> FrameParts:
        ranges = value_ranges(tx[key], parts)
        return FrameParts(lambda: (table(tx.filter(pl.col(key).is_between(*bounds))) for bounds in ranges))

    return StateTables(
        customer_daily=by_range("customer_id", lambda part: _customer_daily(part, days)),
        customer_intraday=by_range("customer_id", _customer_intraday),
        terminal_daily=by_range("terminal_id", lambda part: _terminal_daily(part, days, label_delay_days, early)),
    )


def early_labels(transactions: pl.DataFrame, label_events: pl.DataFrame | None, label_delay_days: int) -> pl.DataFrame:
    """The labels known before the delay, one per transaction (its first event): terminal_id, the moment it starts
    counting (`from_us`: max(known_at, tx time)), the moment its transaction enters the window (`until_us`: tx time +
    delay) and `fraud`; only those with from_us < until_us."""
    schema = {"terminal_id": transactions.schema["terminal_id"], "from_us": pl.Int64, "until_us": pl.Int64,
              "fraud": pl.Float64}  # fmt: skip
    if label_events is None or label_events.is_empty():
        return pl.DataFrame(schema=schema)
    first = label_events.sort("known_at", "transaction_id").unique("transaction_id", keep="first")
    tx_us = pl.col("tx_datetime").dt.epoch("us")
    return (
        transactions.lazy()
        .select("transaction_id", "terminal_id", tx_us=tx_us)
        .join(
            first.lazy().select("transaction_id", "tx_fraud", known_us=pl.col("known_at").dt.epoch("us")),
            on="transaction_id",
            how="inner",
        )
        .select(
            "terminal_id",
            from_us=pl.max_horizontal("known_us", "tx_us"),
            until_us=pl.col("tx_us") + label_delay_days * MICROS_PER_DAY,
            fraud=pl.col("tx_fraud").cast(pl.Float64),
        )
        .filter(pl.col("from_us") < pl.col("until_us"))
        .collect()
    )


def transaction_features(transactions: pl.DataFrame, tables: StateTables) -> pl.DataFrame:
    """Every transaction with its label columns and features: the offline truth the other paths must match."""
    tx = _with_day(transactions).with_columns(pl.col("tx_datetime").dt.epoch("us").alias("tx_us"))
    joined = (
        tx.join(
            tables.customer_daily.drop(EVENT_TIMESTAMP), on=["customer_id", "day"], how="left", maintain_order="left"
        )
        .join(tables.terminal_daily.drop(EVENT_TIMESTAMP), on=["terminal_id", "day"], how="left", maintain_order="left")
        .join(
            tables.customer_intraday.rename({EVENT_TIMESTAMP: "tx_datetime"}),
            on=["customer_id", "tx_datetime"],
            how="left",
            maintain_order="left",
        )
    )
    state = {name: joined[name].to_numpy() for name in NUMBER_STATE} | {
        name: event_lists(joined[name]) for name in LIST_STATE
    }
    features = compute_features(state, joined["tx_us"].to_numpy(), joined["tx_amount"].to_numpy())
    return joined.select(LABEL_COLUMNS).with_columns(pl.Series(k, v) for k, v in features.items())


def transaction_feature_parts(transactions: pl.DataFrame, tables: StateTables, parts: int) -> FrameParts:
    """`transaction_features` from lazily read state tables, `parts` ranges of days each (about equally many
    transactions): each range reads only its days' state. The same rows in the same order."""
    ranges = weighted_ranges(_with_day(transactions)["day"], parts)

    def part(first: int, last: int) -> pl.DataFrame:
        on_days = pl.col("day").is_between(first, last)
        intraday_day = pl.col(EVENT_TIMESTAMP).dt.epoch("us") // MICROS_PER_DAY
        state = pl.collect_all([tables.customer_daily.filter(on_days),
                                tables.customer_intraday.filter(intraday_day.is_between(first, last)),
                                tables.terminal_daily.filter(on_days)])  # fmt: skip
        tx_day = pl.col("tx_datetime").dt.epoch("us") // MICROS_PER_DAY
        return transaction_features(transactions.filter(tx_day.is_between(first, last)), StateTables(*state))

    return FrameParts(lambda: (part(first, last) for first, last in ranges))


def event_lists(column: pl.Series) -> EventLists:
    """A list column of the state (None: no events) as the definitions take many rows' lists."""
    return EventLists(column.list.len().fill_null(0).to_numpy(), column.explode().drop_nulls().to_numpy())


def _with_day(transactions: pl.DataFrame) -> pl.DataFrame:
    return transactions.with_columns((pl.col("tx_datetime").dt.epoch("us") // MICROS_PER_DAY).alias("day"))


def _day_start(day: pl.Expr) -> pl.Expr:
    return (day * MICROS_PER_DAY).cast(UTC_MICROS).alias(EVENT_TIMESTAMP)


def _dense_daily(tx: pl.DataFrame, key: str, days: pl.Series, aggregates: list[pl.Expr]) -> pl.DataFrame:
    """One row per (entity, day) over `days`, with the day's aggregates (0 on days without transactions)."""
    daily = tx.group_by(key, "day").agg(aggregates)
    grid = tx.select(pl.col(key).unique().sort()).join(days.to_frame(), how="cross")
    return grid.join(daily, on=[key, "day"], how="left").fill_null(0).sort(key, "day")


def _window_sum(column: str, size: int, lag: int, key: str) -> pl.Expr:
    """Sum of `column` over the `size` days ending `lag` days before each row's day (rows are dense days)."""
    return pl.col(column).rolling_sum(size, min_samples=1).shift(lag, fill_value=0).over(key)


def _customer_daily(tx: pl.DataFrame, days: pl.Series) -> pl.DataFrame:
    aggregates = [pl.len().cast(pl.Int64).alias("nb"), pl.col("tx_amount").sum().alias("amount"),
                  (pl.col("tx_amount") * pl.col("tx_amount")).sum().alias("amount_sq")]  # fmt: skip
    dense = _dense_daily(tx, "customer_id", days, aggregates)
    return dense.select(
        "customer_id",
        "day",
        _day_start(pl.col("day")),
        *(_window_sum("nb", n, 1, "customer_id").alias(f"customer_nb_tx_prev_{n}d") for n in CUSTOMER_WINDOWS),
        *(_window_sum("amount", n, 1, "customer_id").alias(f"customer_amount_prev_{n}d") for n in CUSTOMER_WINDOWS),
        *(
            _window_sum("amount_sq", n, 1, "customer_id").alias(f"customer_amount_sq_prev_{n}d")
            for n in CUSTOMER_WINDOWS
        ),
    )


def _terminal_daily(tx: pl.DataFrame, days: pl.Series, label_delay_days: int, early: pl.DataFrame) -> pl.DataFrame:
    aggregates = [pl.len().cast(pl.Int64).alias("nb"), pl.col("tx_fraud").cast(pl.Int64).sum().alias("frauds")]
    dense = (
        _dense_daily(tx, "terminal_id", days, aggregates)
        .join(_terminal_day_events(tx), on=["terminal_id", "day"], how="left", maintain_order="left")
        .join(_early_label_events(early), on=["terminal_id", "day"], how="left", maintain_order="left")
    )
    lag = label_delay_days + 1
    return dense.select(
        "terminal_id",
        "day",
        _day_start(pl.col("day")),
        *(_window_sum("nb", n, lag, "terminal_id").alias(f"terminal_nb_tx_lagged_{n}d") for n in TERMINAL_WINDOWS),
        *(
            _window_sum("frauds", n, lag, "terminal_id").alias(f"terminal_nb_fraud_lagged_{n}d")
            for n in TERMINAL_WINDOWS
        ),
        *(_lagged_events(label_delay_days + k).alias(f"terminal_events_lag_{k}d") for k in TERMINAL_EDGE_LAGS),
        *(_or_empty(pl.col(name)).alias(name) for name in TERMINAL_EARLY_LABELS),
    ).join(
        _terminal_fraud_runs(tx, days, label_delay_days), on=["terminal_id", "day"], how="left", maintain_order="left"
    )


def _terminal_fraud_runs(tx: pl.DataFrame, days: pl.Series, label_delay_days: int) -> pl.DataFrame:
    """Per terminal and day D: the fraud run of days D - delay - RUN_WINDOW_DAYS .. D - delay - 1 (definitions.py).

    From each day's own run (the frauds at or after its latest genuine transaction) and its frauds: the window's
    run is the run of its latest day with a genuine transaction plus every fraud of the days after it (all of the
    window's frauds when no day has a genuine one); its first fraud, that day's run's first, or else the first fraud
    of the days after it."""
    us, fraud = pl.col("tx_datetime").dt.epoch("us"), pl.col("tx_fraud") == 1
    latest_genuine = us.filter(~fraud).max()
    in_run = fraud & (us >= latest_genuine.fill_null(-1))
    daily = tx.group_by("terminal_id", "day").agg(
        nb_fraud=fraud.sum().cast(pl.Int64),
        latest_genuine=latest_genuine,
        latest_fraud=us.filter(fraud).max(),
        first_fraud=us.filter(fraud).min(),
        run_nb=in_run.sum().cast(pl.Int64),
        run_first=us.filter(in_run).min(),
    )
    end = label_delay_days + 1  # the window's last day is D - end
    dense = (
        tx.select(pl.col("terminal_id").unique().sort())
        .join(days.to_frame(), how="cross")
        .join(daily, on=["terminal_id", "day"], how="left")
        .with_columns(pl.col("nb_fraud", "run_nb").fill_null(0))
        .sort("terminal_id", "day")
        .with_columns(
            genuine_day=pl.when(pl.col("latest_genuine").is_not_null()).then(pl.col("day")),
            frauds_through=pl.col("nb_fraud").cum_sum().over("terminal_id"),
            next_first_fraud=pl.col("first_fraud").backward_fill().over("terminal_id"),
        )
    )
    window = dense.select(
        "terminal_id",
        "day",
        # the latest day of the window with a genuine transaction (null: none), the window's first day
        run_day=pl.col("genuine_day").forward_fill().shift(end).over("terminal_id"),
        window_start=pl.col("day") - end - RUN_WINDOW_DAYS + 1,
        frauds_through_end=pl.col("frauds_through").shift(end, fill_value=0).over("terminal_id"),
        latest_fraud=pl.col("latest_fraud").rolling_max(RUN_WINDOW_DAYS, min_samples=1).shift(end).over("terminal_id"),
        window_frauds=pl.col("nb_fraud")
        .rolling_sum(RUN_WINDOW_DAYS, min_samples=1)
        .shift(end, fill_value=0)
        .over("terminal_id"),
    ).with_columns(run_day=pl.when(pl.col("run_day") >= pl.col("window_start")).then(pl.col("run_day")))
    at_run_day = dense.select("terminal_id", run_day="day", run_nb_day="run_nb", run_first_day="run_first",
                              frauds_through_run_day="frauds_through")  # fmt: skip
    after = dense.select("terminal_id", first_day="day", first_after="next_first_fraud")
    first_day = pl.coalesce(pl.col("run_day") + 1, pl.max_horizontal("window_start", days.min()))
    joined = (
        window.join(at_run_day, on=["terminal_id", "run_day"], how="left", maintain_order="left")
        .with_columns(first_day=first_day)
        .join(after, on=["terminal_id", "first_day"], how="left", maintain_order="left")
    )
    restarted = pl.col("run_day").is_not_null()
    after_run_day = pl.col("frauds_through_end") - pl.col("frauds_through_run_day")
    nb = pl.when(restarted).then(pl.col("run_nb_day") + after_run_day).otherwise(pl.col("window_frauds"))
    first = pl.when(restarted & (pl.col("run_nb_day") > 0)).then(pl.col("run_first_day")).otherwise("first_after")
    lag_0_start = (pl.col("day") - label_delay_days) * MICROS_PER_DAY  # times as microseconds before it
    return joined.select(
        "terminal_id",
        "day",
        terminal_fraud_run_nb_lagged=nb,
        terminal_fraud_run_start_lagged_us=pl.when(nb > 0).then(lag_0_start - first).otherwise(0),
        terminal_last_fraud_lagged_us=(lag_0_start - pl.col("latest_fraud")).fill_null(0),
    )


def _terminal_day_events(tx: pl.DataFrame) -> pl.DataFrame:
    """Per terminal and day with transactions: [time of day in microseconds, fraud, ...], ordered by time then fraud."""
    tod = (pl.col("tx_datetime").dt.epoch("us") % MICROS_PER_DAY).cast(pl.Float64)
    pairs = tx.select("terminal_id", "day", tod.alias("tod"), pl.col("tx_fraud").cast(pl.Float64).alias("fraud"))
    return _day_lists(pairs, "events")


def _early_label_events(early: pl.DataFrame) -> pl.DataFrame:
    """Per terminal and day that early labels meet: their "from" and "until" events (definitions.py)."""
    day_start = pl.col("day") * MICROS_PER_DAY
    froms = (
        early.with_columns(
            day=pl.int_ranges(pl.col("from_us") // MICROS_PER_DAY, (pl.col("until_us") - 1) // MICROS_PER_DAY + 1)
        )
        .explode("day")
        .select(
            "terminal_id",
            "day",
            pl.max_horizontal(pl.col("from_us") - day_start, 0).cast(pl.Float64).alias("tod"),
            "fraud",
        )
    )
    untils = (
        early.with_columns(day=(pl.col("until_us") - 1) // MICROS_PER_DAY)
        .select("terminal_id", "day", (pl.col("until_us") - day_start).cast(pl.Float64).alias("tod"), "fraud")
        .filter(pl.col("tod") < MICROS_PER_DAY)
    )
    from_name, until_name = TERMINAL_EARLY_LABELS
    return _day_lists(froms, from_name).join(_day_lists(untils, until_name), on=["terminal_id", "day"], how="full",
                                              coalesce=True)  # fmt: skip


def _day_lists(pairs: pl.DataFrame, name: str) -> pl.DataFrame:
    """(terminal_id, day, tod, fraud) rows as one [tod, fraud, ...] list `name` per terminal and day, ordered by time
    then fraud."""
    return (
        pairs.sort("terminal_id", "day", "tod", "fraud")
        .group_by("terminal_id", "day", maintain_order=True)
        .agg(pl.concat_list("tod", "fraud").list.explode(keep_nulls=False, empty_as_null=False).alias(name))
    )


def _or_empty(lists: pl.Expr) -> pl.Expr:
    return pl.when(lists.is_null()).then(pl.lit([], dtype=pl.List(pl.Float64))).otherwise(lists)


def _lagged_events(lag: int) -> pl.Expr:
    """The events of the day `lag` days before each row's day (rows are dense days; [] when none)."""
    return _or_empty(pl.col("events").shift(lag).over("terminal_id"))


def _customer_intraday(tx: pl.DataFrame) -> pl.DataFrame:
    """Per customer and distinct transaction time s: the day's count and sum before s and at s."""
    at = (
        tx.group_by("customer_id", "day", "tx_datetime")
        .agg(
            pl.len().cast(pl.Int64).alias("nb_at"),
            pl.col("tx_amount").sum().alias("amount_at"),
            (pl.col("tx_amount") * pl.col("tx_amount")).sum().alias("amount_sq_at"),
        )
        .sort("customer_id", "tx_datetime")
    )

    def before(column: str) -> pl.Expr:
        return pl.col(column).cum_sum().shift(1, fill_value=0).over("customer_id", "day")

    return at.select(
        "customer_id",
        pl.col("tx_datetime").alias(EVENT_TIMESTAMP),
        before("nb_at").alias("customer_today_nb_tx_before"),
        before("amount_at").alias("customer_today_amount_before"),
        before("amount_sq_at").alias("customer_today_amount_sq_before"),
        pl.col("nb_at").alias("customer_today_nb_tx_at"),
        pl.col("amount_at").alias("customer_today_amount_at"),
        pl.col("amount_sq_at").alias("customer_today_amount_sq_at"),
        pl.col("tx_datetime").dt.epoch("us").alias("customer_today_last_tx_us"),
    )


def with_stored_intraday(tables: StateTables) -> StateTables:
    """The state tables as the feature store's sources: the intraday values also as the one list the store holds
    (`INTRADAY_STATE`), whichever engine computed them (frames or parts)."""
    stored = pl.concat_list([pl.col(name).cast(pl.Float64) for name in CUSTOMER_INTRADAY]).alias(INTRADAY_STATE)
    intraday = tables.customer_intraday
    if isinstance(intraday, FrameParts):
        return tables._replace(customer_intraday=intraday.map(lambda part: part.with_columns(stored)))
    return tables._replace(customer_intraday=intraday.with_columns(stored))
