"""The decision rules, one case each: levels from the PSI thresholds, and the first matching action."""

from __future__ import annotations

import polars as pl
import pytest

from fraud_detection.monitoring.decision import DecisionParams, Quality, decide, with_levels
from fraud_detection.monitoring.params import DriftThresholds
from tests.conftest import changed, params_problem

THRESHOLDS = DriftThresholds(mild=0.1, moderate=0.25, severe=0.5)
PARAMS = DecisionParams(THRESHOLDS, "moderate", {"auc_roc": 0.8, "average_precision": 0.4}, rollback_margin=0.05)
GOOD, BAD = Quality("2", 1000, 10, 0.9, 0.7, 0.3), Quality("2", 1000, 10, 0.7, 0.3, 0.1)


def table(**psi: float) -> pl.DataFrame:
    return with_levels(pl.DataFrame({"column": list(psi), "psi": list(psi.values())}), THRESHOLDS)


def test_levels_follow_the_thresholds_at_their_lower_bounds():
    levels = table(a=0.0999, b=0.1, c=0.25, d=0.5, e=3.0)["level"].to_list()
    assert levels == ["none", "mild", "moderate", "severe", "severe"]


@pytest.mark.parametrize(
    ("psi", "champion", "previous", "action"),
    [
        ({"a": 0.01}, GOOD, None, "none"),
        ({"a": 0.12}, GOOD, None, "investigate"),
        ({"a": 0.3, "b": 0.12}, GOOD, None, "retrain"),
        ({"a": 0.01}, BAD, None, "retrain"),  # below the floor, nothing to go back to
        ({"a": 0.01}, BAD, Quality("1", 1000, 10, 0.9, 0.6, 0.3), "rollback"),
        ({"a": 0.9}, BAD, Quality("1", 1000, 10, 0.9, 0.6, 0.3), "rollback"),  # going back first, then retrain
        ({"a": 0.01}, BAD, Quality("1", 1000, 10, 0.9, 0.33, 0.3), "retrain"),  # the previous one fails a floor
        ({"a": 0.01}, Quality("2", 1000, 10, 0.79, 0.41, 0.1), Quality("1", 1000, 10, 0.85, 0.44, 0.3), "retrain"),
        ({"a": 0.01}, GOOD, Quality("1", 1000, 10, 0.99, 0.99, 0.9), "none"),  # better, but no need to go back
    ],
)
def test_actions(psi, champion, previous, action):
    decision = decide(table(**psi), champion, previous, PARAMS)
    assert decision["action"] == action, decision["reasons"]
    assert decision["flagged"] == {k: lvl for k, lvl in zip(psi, table(**psi)["level"], strict=True) if lvl != "none"}


def test_the_reasons_name_the_figures():
    decision = decide(table(a=0.3), BAD, Quality("1", 1000, 10, 0.9, 0.6, 0.3), PARAMS)
    assert "auc_roc 0.700 < 0.8" in decision["reasons"][0] and "version 1" in decision["reasons"][1]
    assert "['a']" in decision["reasons"][2]


def test_the_params_come_from_monitor_and_the_register_gates_floors(params):
    monitor = changed(params.monitor, retrain_level="severe")
    decision_params = DecisionParams.of(monitor, params.register.gate)
    assert decision_params.thresholds == params.monitor.thresholds and decision_params.retrain_level == "severe"
    assert decision_params.floors == {"auc_roc": params.register.gate.min_auc_roc,
                                      "average_precision": params.register.gate.min_average_precision}  # fmt: skip
    assert decision_params.rollback_margin == params.monitor.guardrail.rollback_margin


def test_bad_params_are_named(config_loader):
    raw = config_loader["parameters"]
    thresholds = {"mild": 0.3, "moderate": 0.2, "severe": 0.5}
    assert params_problem(raw, "monitor", thresholds=thresholds) == (
        "params.yaml monitor.thresholds: expected mild <= moderate <= severe (0.3, 0.2, 0.5)")  # fmt: skip
    assert params_problem(raw, "monitor", thresholds={**thresholds, "mild": 0}) == (
        "params.yaml monitor.thresholds.mild=0: expected a number > 0")  # fmt: skip
    assert params_problem(raw, "monitor", retrain_level="none") == (
        "params.yaml monitor.retrain_level='none': expected 'mild' or 'moderate' or 'severe'")  # fmt: skip
    # the floors are the register gate's: a floor under monitor.guardrail is a leftover, named as such
    assert params_problem(raw, "monitor", guardrail={"min_auc_roc": 0.8, "rollback_margin": 0.05}) == (
        "params.yaml monitor.guardrail.min_auc_roc=0.8: unknown key; expected one of ['rollback_margin']")  # fmt: skip
