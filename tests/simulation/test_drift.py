"""Drift scenarios (simulate.drift): no drift leaves the output bit for bit as before; each kind does what it says."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import re

import numpy as np
import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from fraud_detection.runtime.params import ParamsError, checked_params
from fraud_detection.runtime.project import project_params
from fraud_detection.simulation.params import AmountInflation, CardTesting, SimulateParams, TerminalCluster
from fraud_detection.simulation.simulator import SimulationConfig, simulate_transactions
from tests.conftest import PROJECT_ROOT, changed

PARAMS_YAML = PROJECT_ROOT / "params.yaml"
SMALL = SimulationConfig.from_params(changed(project_params(root=PROJECT_ROOT).simulate, profile="small"))
# sha256 of the columns of the simulator's output before drift existed (numpy 2 Generator streams; a numpy upgrade
# that changes a distribution's stream would change them too, and the reason should then be checked).
HASHES_BEFORE_DRIFT = {
    (300, 600, 60, 0, 5.0): "c2244ec5e32b3cd25b901f0e0af43e212ead0fbcafad6dfdbd666b27374c228f",
    (200, 400, 30, 3, 7.0): "6b277da7d5371a27eaa8a44aa4cf8032dcc5e7bf7407a2ecf7c1e24237cb29ce",
}
DAY = (pl.col("tx_datetime").dt.date() - pl.lit(SMALL.start_date)).dt.total_days().alias("day")


def _commented_examples() -> list[dict]:
    """The drift entries params.yaml shows, commented out, under `drift: []`."""
    lines = PARAMS_YAML.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  drift: []"))
    commented = itertools.takewhile(lambda line: line.startswith("  # "), lines[start + 1 :])
    return yaml.safe_load("\n".join(line.replace("  # ", "  ", 1) for line in commented))["drift"]


EXAMPLES = {entry["kind"]: entry for entry in _commented_examples()}


def inflation(**changes: object) -> AmountInflation:
    return AmountInflation.model_validate({**EXAMPLES["amount_inflation"], **changes})


def card_test(**changes: object) -> CardTesting:
    return CardTesting.model_validate({**EXAMPLES["new_fraud_pattern"], **changes})


def terminal_cluster(**changes: object) -> TerminalCluster:
    return TerminalCluster.model_validate({**EXAMPLES["terminal_cluster"], **changes})


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
    config = dataclasses.replace(SMALL, n_customers=n_customers, n_terminals=n_terminals, n_days=n_days,
                                 radius=radius, seed=seed, drift=())  # fmt: skip
    assert _digest(simulate_transactions(config)) == expected


def test_an_empty_drift_list_means_no_scenario(small_simulate_params: SimulateParams) -> None:
    assert SimulationConfig.from_params(changed(small_simulate_params, drift=[])).drift == ()


def test_params_yaml_has_no_drift_and_its_commented_examples_parse(small_simulate_params: SimulateParams) -> None:
    assert small_simulate_params.drift == []
    parsed = changed(small_simulate_params, drift=list(EXAMPLES.values()), profile="default").drift
    assert [type(scenario) for scenario in parsed] == [AmountInflation, CardTesting, TerminalCluster]


def test_amount_inflation_leaves_the_days_before_start_unchanged(base: pl.DataFrame) -> None:
    drifted = _simulate(inflation(start_day=30, factor=1.5))
    assert_frame_equal(drifted.filter(pl.col("day") < 30), base.filter(pl.col("day") < 30))


def test_amount_inflation_multiplies_amounts_from_start_day(base: pl.DataFrame) -> None:
    drifted = _simulate(inflation(start_day=30, factor=1.2))
    assert drifted.height == base.height, "inflation draws nothing: same transactions"
    after = pl.col("day") >= 30
    np.testing.assert_allclose(
        drifted.filter(after)["tx_amount"], 1.2 * base.filter(after)["tx_amount"], atol=0.03, rtol=1e-3
    )
    genuine = drifted.filter(pl.col("tx_fraud") == 0)
    ratio = genuine.filter(after)["tx_amount"].mean() / genuine.filter(~after)["tx_amount"].mean()
    assert abs(ratio / 1.2 - 1) < 0.03


def test_amount_inflation_comes_before_the_labels_so_the_threshold_rule_holds() -> None:
    drifted = _simulate(inflation(start_day=30, factor=2.0))
    threshold = SMALL.fraud.amount_threshold
    assert (drifted.filter(pl.col("tx_fraud_scenario") == 0)["tx_amount"] <= threshold).all()
    assert (drifted.filter(pl.col("tx_fraud_scenario") == 1)["tx_amount"] > threshold).all()


@pytest.fixture(scope="module")
def card_testing() -> tuple[CardTesting, pl.DataFrame]:
    scenario = card_test(start_day=40, customers_per_day=20, days=7, tx_per_card=3, max_amount=5.0)
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
    scenario = terminal_cluster(start_day=20, center=[40.0, 60.0], radius=15.0, days=14, fraud_fraction=0.5)
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
        inflation(start_day=30, factor=1.5),
        card_test(start_day=40),
        terminal_cluster(start_day=20, center=[50.0, 50.0], radius=15.0),
    )
    assert set(drifted["tx_fraud_scenario"].unique()) == {0, 1, 2, 3, 4, 5}
    assert ((drifted["tx_fraud_scenario"] > 0).cast(pl.Int8) == drifted["tx_fraud"]).all()
    assert drifted["transaction_id"].to_list() == list(range(drifted.height))


KINDS = "expected a mapping whose kind is one of ['amount_inflation', 'new_fraud_pattern', 'terminal_cluster']"
INFLATION = {"kind": "amount_inflation", "start_day": 3, "factor": 2}
CARD_TEST = {**EXAMPLES["new_fraud_pattern"], "start_day": 3}
CLUSTER = {**EXAMPLES["terminal_cluster"], "start_day": 3}


@pytest.mark.parametrize(
    ("drift", "message"),
    [
        ({"kind": "amount_inflation"}, "simulate.drift={'kind': 'amount_inflation'}: expected a list of mappings"),
        (None, "simulate.drift=None: expected a list of mappings whose kind is one of"),
        (["amount_inflation"], f"simulate.drift[0]='amount_inflation': {KINDS}"),
        ([{**INFLATION, "kind": "inflation"}], "simulate.drift[0].kind='inflation': expected one of 'amount_infl"),
        ([{"start_day": 3}], f"simulate.drift[0]={{'start_day': 3}}: {KINDS}"),
        (
            [INFLATION, {"kind": "amount_inflation", "start_day": 3}],
            "simulate.drift[1].factor is missing; expected a number > 0",
        ),
        ([{**CLUSTER, "radius_km": 4}], "simulate.drift[0].radius_km=4: unknown key; expected one of ['kind', "),
        ([{**INFLATION, "start_day": -1}], "simulate.drift[0].start_day=-1: expected an integer >= 0"),
        ([{**INFLATION, "start_day": 1.5}], "simulate.drift[0].start_day=1.5: expected an integer >= 0"),
        ([{**INFLATION, "factor": 0}], "simulate.drift[0].factor=0: expected a number > 0"),
        ([{**INFLATION, "factor": "2"}], "simulate.drift[0].factor='2': expected a number > 0"),
        ([{**CARD_TEST, "days": 0}], "simulate.drift[0].days=0: expected an integer >= 1"),
        ([{**CARD_TEST, "min_amount": 5, "max_amount": 2}], "simulate.drift[0]: expected max_amount >= min_amount (5"),
        ([{**CARD_TEST, "night_end_hour": 30}], "simulate.drift[0].night_end_hour=30: expected a number in (0, 24]"),
        ([{**CARD_TEST, "min_amount": "1"}], "simulate.drift[0].min_amount='1': expected a number > 0"),
        ([{**CLUSTER, "center": [50, 150]}], "simulate.drift[0].center[1]=150: expected a number in [0, 100]"),
        ([{**CLUSTER, "center": [50]}], "simulate.drift[0].center=[50]: expected a list of 2 numbers in [0, 100]"),
        ([{**CLUSTER, "fraud_fraction": 1.5}], "simulate.drift[0].fraud_fraction=1.5: expected a number in (0, 1]"),
    ],
)
def test_bad_entries_are_clear_errors(config_loader, drift: object, message: str) -> None:
    raw = config_loader["parameters"]
    simulate = {**raw["simulate"], "profile": "small", "drift": drift}
    with pytest.raises(ParamsError, match=re.escape(f"params.yaml {message}")):
        checked_params({**raw, "simulate": simulate})
