"""Drift scenarios (simulate.drift): no drift leaves the output bit for bit as before; each kind does what it says."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from fraud_detection.simulation import (
    AmountInflation,
    CardTesting,
    SimulationConfig,
    TerminalCluster,
    simulate_transactions,
)
from fraud_detection.simulation.drift import drift_from_params

PARAMS_YAML = Path(__file__).resolve().parents[2] / "params.yaml"
SMALL = SimulationConfig(n_customers=300, n_terminals=600, n_days=60, start_date=date(2018, 4, 1))
# sha256 of the columns of the simulator's output before drift existed (numpy 2 Generator streams; a numpy upgrade
# that changes a distribution's stream would change them too, and the reason should then be checked).
HASHES_BEFORE_DRIFT = {
    (300, 600, 60, 0, 5.0): "c2244ec5e32b3cd25b901f0e0af43e212ead0fbcafad6dfdbd666b27374c228f",
    (200, 400, 30, 3, 7.0): "6b277da7d5371a27eaa8a44aa4cf8032dcc5e7bf7407a2ecf7c1e24237cb29ce",
}
DAY = (pl.col("tx_datetime").dt.date() - pl.lit(SMALL.start_date)).dt.total_days().alias("day")


def _digest(frame: pl.DataFrame) -> str:
    digest = hashlib.sha256()
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pl.Datetime):
            column = column.dt.epoch("us")
        digest.update(name.encode())
        digest.update(column.to_numpy().tobytes())
    return digest.hexdigest()


def _simulate(*drift: AmountInflation | CardTesting | TerminalCluster) -> pl.DataFrame:
    return simulate_transactions(dataclasses.replace(SMALL, drift=drift)).with_columns(DAY)


@pytest.fixture(scope="module")
def base() -> pl.DataFrame:
    return _simulate()


@pytest.mark.parametrize(("size", "expected"), HASHES_BEFORE_DRIFT.items())
def test_no_drift_output_is_bit_identical_to_before(size: tuple, expected: str) -> None:
    n_customers, n_terminals, n_days, seed, radius = size
    config = SimulationConfig(n_customers, n_terminals, n_days, date(2018, 4, 1), radius=radius, seed=seed)
    assert _digest(simulate_transactions(config)) == expected


@pytest.mark.parametrize("drift", [[], None, "absent"])
def test_no_drift_in_params_means_no_scenario(small_simulate_params: dict, drift: list | str | None) -> None:
    params = {key: value for key, value in small_simulate_params.items() if key != "drift"}
    if drift != "absent":
        params["drift"] = drift
    assert SimulationConfig.from_params(params).drift == ()


def test_params_yaml_defaults_to_no_drift_and_its_commented_examples_parse(small_simulate_params: dict) -> None:
    assert small_simulate_params["drift"] == []
    lines = PARAMS_YAML.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  drift: []"))
    commented = itertools.takewhile(lambda line: line.startswith("  # "), lines[start + 1 :])
    examples = yaml.safe_load("\n".join(line.replace("  # ", "  ", 1) for line in commented))
    parsed = drift_from_params(examples["drift"], n_days=183)
    assert [type(scenario) for scenario in parsed] == [AmountInflation, CardTesting, TerminalCluster]


def test_amount_inflation_leaves_the_days_before_start_unchanged(base: pl.DataFrame) -> None:
    drifted = _simulate(AmountInflation(start_day=30, factor=1.5))
    assert_frame_equal(drifted.filter(pl.col("day") < 30), base.filter(pl.col("day") < 30))


def test_amount_inflation_multiplies_amounts_from_start_day(base: pl.DataFrame) -> None:
    drifted = _simulate(AmountInflation(start_day=30, factor=1.2))
    assert drifted.height == base.height, "inflation draws nothing: same transactions"
    after = pl.col("day") >= 30
    np.testing.assert_allclose(
        drifted.filter(after)["tx_amount"], 1.2 * base.filter(after)["tx_amount"], atol=0.03, rtol=1e-3
    )
    genuine = drifted.filter(pl.col("tx_fraud") == 0)
    ratio = genuine.filter(after)["tx_amount"].mean() / genuine.filter(~after)["tx_amount"].mean()
    assert abs(ratio / 1.2 - 1) < 0.03


def test_amount_inflation_comes_before_the_labels_so_the_threshold_rule_holds() -> None:
    drifted = _simulate(AmountInflation(start_day=30, factor=2.0))
    threshold = SMALL.fraud.amount_threshold
    assert (drifted.filter(pl.col("tx_fraud_scenario") == 0)["tx_amount"] <= threshold).all()
    assert (drifted.filter(pl.col("tx_fraud_scenario") == 1)["tx_amount"] > threshold).all()


@pytest.fixture(scope="module")
def card_testing() -> tuple[CardTesting, pl.DataFrame]:
    scenario = CardTesting(start_day=40, customers_per_day=20, days=7, tx_per_card=3, max_amount=5.0)
    return scenario, _simulate(scenario)


def test_card_testing_frauds_only_in_their_window(card_testing: tuple[CardTesting, pl.DataFrame]) -> None:
    scenario, drifted = card_testing
    tests = drifted.filter(pl.col("tx_fraud_scenario") == 4)
    assert tests.height == scenario.customers_per_day * scenario.tx_per_card * scenario.days
    assert sorted(tests["day"].unique()) == list(range(40, 47))
    assert (tests["tx_fraud"] == 1).all()


def test_card_testing_is_small_amounts_at_night(card_testing: tuple[CardTesting, pl.DataFrame]) -> None:
    scenario, drifted = card_testing
    tests = drifted.filter(pl.col("tx_fraud_scenario") == 4)
    assert tests["tx_amount"].min() >= scenario.min_amount and tests["tx_amount"].max() <= scenario.max_amount
    assert tests["tx_datetime"].dt.hour().max() < scenario.night_end_hour


def test_card_testing_terminals_are_not_the_cards_usual_ones(card_testing: tuple[CardTesting, pl.DataFrame]) -> None:
    _, drifted = card_testing
    usual = drifted.filter(pl.col("tx_fraud_scenario") != 4).select("customer_id", "terminal_id").unique()
    tests = drifted.filter(pl.col("tx_fraud_scenario") == 4)
    assert tests.join(usual, on=["customer_id", "terminal_id"]).height / tests.height < 0.05


def test_card_testing_adds_rows_in_time_order_and_keeps_the_others(
    base: pl.DataFrame, card_testing: tuple[CardTesting, pl.DataFrame]
) -> None:
    _, drifted = card_testing
    assert drifted["transaction_id"].to_list() == list(range(drifted.height))
    assert drifted["tx_datetime"].is_sorted()
    others = drifted.filter(pl.col("tx_fraud_scenario") != 4).drop("transaction_id")
    assert_frame_equal(others, base.drop("transaction_id"))


def test_terminal_cluster_frauds_only_near_center_in_window(base: pl.DataFrame) -> None:
    scenario = TerminalCluster(start_day=20, center=(40.0, 60.0), radius=15.0, days=14, fraud_fraction=0.5)
    drifted = _simulate(scenario)
    rng = np.random.default_rng(SMALL.seed)  # re-derive the grid: customers (xy, mean, rate), then terminals
    rng.uniform(size=(SMALL.n_customers, 2)), rng.uniform(size=SMALL.n_customers), rng.uniform(size=SMALL.n_customers)
    terminal_xy = rng.uniform(0, 100, size=(SMALL.n_terminals, 2))
    near = np.linalg.norm(terminal_xy - scenario.center, axis=1) < scenario.radius
    drifted = drifted.with_columns(near=pl.Series(near)[drifted["terminal_id"]])
    cluster = drifted.filter(pl.col("tx_fraud_scenario") == 5)
    assert cluster["near"].all()
    assert cluster["day"].min() >= 20 and cluster["day"].max() < 34
    exposed = drifted.filter(pl.col("near") & pl.col("day").is_between(20, 33))
    assert exposed.height > 200
    assert abs(cluster.height / exposed.height - scenario.fraud_fraction) < 0.08
    labels = ["tx_fraud", "tx_fraud_scenario"]
    assert_frame_equal(drifted.drop("near", *labels), base.drop(*labels)), "relabels, adds no row"
    others = drifted["tx_fraud_scenario"] != 5
    assert (drifted.filter(others)["tx_fraud_scenario"] == base.filter(others)["tx_fraud_scenario"]).all()


def test_entries_combine() -> None:
    drifted = _simulate(
        AmountInflation(start_day=30, factor=1.5),
        CardTesting(start_day=40),
        TerminalCluster(start_day=20, center=(50.0, 50.0), radius=15.0),
    )
    assert set(drifted["tx_fraud_scenario"].unique()) == {0, 1, 2, 3, 4, 5}
    assert ((drifted["tx_fraud_scenario"] > 0).cast(pl.Int8) == drifted["tx_fraud"]).all()
    assert drifted["transaction_id"].to_list() == list(range(drifted.height))


@pytest.mark.parametrize(
    ("drift", "message"),
    [
        ({"kind": "amount_inflation"}, "simulate.drift is {'kind': 'amount_inflation'}; expected a list"),
        (["amount_inflation"], "simulate.drift[0] is 'amount_inflation'; expected a mapping"),
        ([{"kind": "inflation", "start_day": 3}], "simulate.drift[0].kind is 'inflation'; expected one of"),
        ([{"start_day": 3}], "simulate.drift[0].kind is None; expected one of ['amount_inflation', "),
        (
            [{"kind": "amount_inflation", "start_day": 3, "factor": 2}, {"kind": "amount_inflation", "start_day": 3}],
            "simulate.drift[1] (amount_inflation) lacks field(s) ['factor']; expected ['kind', 'start_day', 'factor']",
        ),
        (
            [{"kind": "terminal_cluster", "start_day": 3, "center": [1, 2], "radius_km": 4}],
            "simulate.drift[0] (terminal_cluster) has unknown field(s) ['radius_km']; expected only ['kind', ",
        ),
        ([{"kind": "amount_inflation", "start_day": 60, "factor": 2}], "[0].start_day is 60; expected a 0-based day "),
        ([{"kind": "amount_inflation", "start_day": -1, "factor": 2}], "index in 0..59"),
        ([{"kind": "amount_inflation", "start_day": 1.5, "factor": 2}], "[0].start_day is 1.5; expected a 0-based"),
        ([{"kind": "amount_inflation", "start_day": 3, "factor": 0}], "[0].factor is 0; expected a number > 0"),
        ([{"kind": "amount_inflation", "start_day": 3, "factor": "2"}], "[0].factor is '2'; expected a number > 0"),
        ([{"kind": "new_fraud_pattern", "start_day": 3, "days": 0}], "[0].days is 0; expected an integer >= 1"),
        (
            [{"kind": "new_fraud_pattern", "start_day": 3, "min_amount": 5, "max_amount": 2}],
            "[0].max_amount is 2; expected a number >= 5",
        ),
        ([{"kind": "new_fraud_pattern", "start_day": 3, "night_end_hour": 30}], "expected a number of hours in"),
        (
            [{"kind": "new_fraud_pattern", "start_day": 3, "max_amount": 2, "min_amount": "1"}],
            "[0].min_amount is '1'; expected a number > 0",
        ),
        (
            [{"kind": "terminal_cluster", "start_day": 3, "center": [50, 150]}],
            "[0].center is [50, 150]; expected [x, y] with 0 <= x, y <= 100",
        ),
        (
            [{"kind": "terminal_cluster", "start_day": 3, "center": [5, 5], "fraud_fraction": 1.5}],
            "[0].fraud_fraction is 1.5; expected a number in (0, 1]",
        ),
    ],
)
def test_bad_entries_are_clear_errors(small_simulate_params: dict, drift: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        SimulationConfig.from_params({**small_simulate_params, "drift": drift})
