"""simulate_continuation: days after the run, in the run's world (customers, terminals, compromises, drift)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from fraud_detection.simulation.params import (
    AmountInflation,
    CardTesting,
    DriftScenario,
    SimulateParams,
    TerminalCluster,
)
from fraud_detection.simulation.simulator import (
    CompromiseSchedule,
    SimulationConfig,
    compromise_schedule,
    simulate_continuation,
    simulate_run,
    simulate_transactions,
)
from tests.conftest import changed

CONTINUED_DAYS = 30


@pytest.fixture(scope="module")
def config(small_simulate_params: SimulateParams) -> SimulationConfig:
    return SimulationConfig.from_params(small_simulate_params)


@pytest.fixture(scope="module")
def run(config: SimulationConfig) -> pl.DataFrame:
    return simulate_transactions(config).with_columns(_day(config))


@pytest.fixture(scope="module")
def continued(config: SimulationConfig, run: pl.DataFrame) -> pl.DataFrame:
    days = range(config.n_days, config.n_days + CONTINUED_DAYS)
    return simulate_continuation(config, days, run.height).with_columns(_day(config))


def _day(config: SimulationConfig) -> pl.Expr:
    return (pl.col("tx_datetime").dt.date() - pl.lit(config.start_date)).dt.total_days().alias("day")


def _late_drift(n_days: int) -> tuple[DriftScenario, ...]:
    """One entry of each kind, all starting on the first day after the run."""
    return (
        AmountInflation(kind="amount_inflation", start_day=n_days + 2, factor=1.5),
        CardTesting(kind="new_fraud_pattern", start_day=n_days, days=7, customers_per_day=20, tx_per_card=3,
                    min_amount=1.0, max_amount=5.0, night_end_hour=5),
        TerminalCluster(kind="terminal_cluster", start_day=n_days + 1, days=14, center=[50.0, 50.0], radius=15.0,
                        fraud_fraction=0.5),
    )  # fmt: skip


@pytest.mark.parametrize("drifted", [False, True], ids=["no drift", "late drift"])
def test_days_in_one_call_are_the_days_asked_one_by_one(config: SimulationConfig, drifted: bool) -> None:
    config = dataclasses.replace(config, drift=_late_drift(config.n_days) if drifted else ())
    days = range(config.n_days, config.n_days + 4)
    together = simulate_continuation(config, days, 0)
    one_by_one = pl.concat([simulate_continuation(config, range(day, day + 1), 0) for day in days])
    assert_frame_equal(together.drop("transaction_id"), one_by_one.drop("transaction_id"))
    assert set(together["tx_fraud_scenario"].unique()) >= ({0, 2, 3, 4, 5} if drifted else {0, 2, 3})


def test_ids_times_and_columns(config: SimulationConfig, run: pl.DataFrame, continued: pl.DataFrame) -> None:
    assert continued.schema == run.schema
    assert continued["transaction_id"].to_list() == list(range(run.height, run.height + continued.height))
    assert continued["tx_datetime"].is_sorted()
    assert continued["tx_datetime"].min() > run["tx_datetime"].max()
    assert sorted(continued["day"].unique()) == list(range(config.n_days, config.n_days + CONTINUED_DAYS))
    assert ((continued["tx_fraud_scenario"] > 0).cast(pl.Int8) == continued["tx_fraud"]).all()


def test_same_customers_and_terminals(config: SimulationConfig, run: pl.DataFrame, continued: pl.DataFrame) -> None:
    assert continued["customer_id"].max() < config.n_customers
    assert continued["terminal_id"].max() < config.n_terminals
    usual = run.select("customer_id", "terminal_id").unique()
    pairs = continued.select("customer_id", "terminal_id").unique()
    assert pairs.join(usual, on=["customer_id", "terminal_id"]).height / pairs.height > 0.95
    means = [
        frame.filter(pl.col("tx_fraud") == 0).group_by("customer_id").agg(pl.col("tx_amount").mean())
        for frame in (run, continued)
    ]
    joined = means[0].join(means[1], on="customer_id", suffix="_continued")
    assert joined.height > 0.9 * config.n_customers
    assert np.corrcoef(joined["tx_amount"], joined["tx_amount_continued"])[0, 1] > 0.9


def test_a_terminal_compromised_on_the_last_day_stays_so_for_its_window(
    config: SimulationConfig, run: pl.DataFrame, continued: pl.DataFrame
) -> None:
    last_day, window = config.n_days - 1, config.fraud.terminal_compromise_days
    for terminal in compromise_schedule(config).terminals[last_day]:
        at = pl.col("terminal_id") == terminal
        assert (run.filter(at & (pl.col("day") == last_day))["tx_fraud_scenario"].is_in([2, 3])).all()
        during = continued.filter(at & (pl.col("day") < last_day + window))
        assert during.height > 5
        assert during["tx_fraud_scenario"].is_in([2, 3]).all(), "scenario 3 may overwrite 2, as in the run"
        after = continued.filter(at & (pl.col("day") >= last_day + window))
        assert (after["tx_fraud"] == 0).any(), "its compromise ends (it was not hit again)"


def test_fraud_rate_and_scenarios_are_the_runs(run: pl.DataFrame, continued: pl.DataFrame) -> None:
    """Compared with the run's last 30 days: the first ones have fewer compromises running."""
    steady = run.filter(pl.col("day") >= pl.col("day").max() - CONTINUED_DAYS + 1)
    assert 0.75 < continued["tx_fraud"].mean() / steady["tx_fraud"].mean() < 1.33
    assert set(continued["tx_fraud_scenario"].unique()) == {0, 1, 2, 3}
    shares = [frame["tx_fraud_scenario"].value_counts(normalize=True).sort("tx_fraud_scenario")
              for frame in (steady, continued)]  # fmt: skip
    np.testing.assert_allclose(shares[1]["proportion"], shares[0]["proportion"], atol=0.02)


def test_the_recorded_schedule_continues_as_the_replayed_one(config: SimulationConfig, run: pl.DataFrame) -> None:
    transactions, schedule = simulate_run(config)
    assert_frame_equal(transactions, run.drop("day"))
    replayed, recorded = compromise_schedule(config), CompromiseSchedule.from_frame(schedule.as_frame(), config)
    assert (recorded.terminals == replayed.terminals).all() and (recorded.customers == replayed.customers).all()
    days = range(config.n_days, config.n_days + 3)
    assert_frame_equal(simulate_continuation(config, days, 0, recorded), simulate_continuation(config, days, 0))


def test_a_schedule_of_another_run_is_named(config: SimulationConfig) -> None:
    frame = compromise_schedule(config).as_frame()
    longer = dataclasses.replace(config, n_days=config.n_days + 1)
    terminals = config.fraud.terminals_per_day
    expected = f"{config.n_days * terminals} scenario-2 rows; expected {terminals} a day for days 0..{config.n_days}"
    with pytest.raises(ValueError, match=re.escape(expected)):
        CompromiseSchedule.from_frame(frame, longer)
    fewer = dataclasses.replace(config, n_terminals=int(frame.filter(pl.col("scenario") == 2)["entity_id"].max()))
    with pytest.raises(ValueError, match=r"scenario-2 entity_id \d+; expected 0\.\."):
        CompromiseSchedule.from_frame(frame, fewer)


def test_days_of_the_run_are_an_error(config: SimulationConfig) -> None:
    message = f"day {config.n_days - 1} is in the simulated run; expected days >= n_days ({config.n_days})"
    with pytest.raises(ValueError, match=re.escape(message)):
        simulate_continuation(config, range(config.n_days - 1, config.n_days + 2), 0)


def test_no_day_is_no_row(config: SimulationConfig, run: pl.DataFrame) -> None:
    empty = simulate_continuation(config, range(config.n_days, config.n_days), 7)
    assert empty.height == 0 and empty.schema == run.drop("day").schema


def test_params_accept_drift_after_the_run(small_simulate_params: SimulateParams) -> None:
    n_days = small_simulate_params.size.n_days
    entry = {"kind": "amount_inflation", "start_day": n_days + 10, "factor": 2.0}
    assert changed(small_simulate_params, drift=[entry]).drift[0].start_day == n_days + 10


def test_late_drift_leaves_the_run_unchanged(config: SimulationConfig, run: pl.DataFrame) -> None:
    drifted = simulate_transactions(dataclasses.replace(config, drift=_late_drift(config.n_days)))
    assert_frame_equal(drifted, run.drop("day"))


def test_late_amount_inflation_multiplies_continued_amounts_from_its_day(config: SimulationConfig) -> None:
    start, days = config.n_days + 5, range(config.n_days, config.n_days + 10)
    inflation = AmountInflation(kind="amount_inflation", start_day=start, factor=2.0)
    base = simulate_continuation(config, days, 0).with_columns(_day(config))
    drifted = simulate_continuation(dataclasses.replace(config, drift=(inflation,)), days, 0).with_columns(_day(config))
    before, after = pl.col("day") < start, pl.col("day") >= start
    assert_frame_equal(drifted.filter(before), base.filter(before))
    assert drifted.height == base.height, "inflation draws nothing: same transactions"
    np.testing.assert_allclose(drifted.filter(after)["tx_amount"], 2 * base.filter(after)["tx_amount"], atol=0.06)


def test_card_testing_from_the_first_continued_day_adds_scenario_4(config: SimulationConfig) -> None:
    scenario = _late_drift(config.n_days)[1]
    days = range(config.n_days, config.n_days + 10)
    base = simulate_continuation(config, days, 0).with_columns(_day(config))
    drifted = simulate_continuation(dataclasses.replace(config, drift=(scenario,)), days, 0).with_columns(_day(config))
    tests = drifted.filter(pl.col("tx_fraud_scenario") == 4)
    assert tests.height == scenario.customers_per_day * scenario.tx_per_card * scenario.days
    assert sorted(tests["day"].unique()) == list(range(config.n_days, config.n_days + scenario.days))
    others = drifted.filter(pl.col("tx_fraud_scenario") != 4).drop("transaction_id")
    assert_frame_equal(others, base.drop("transaction_id"))
