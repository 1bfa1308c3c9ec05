"""The decision rules, one case each: levels from the PSI thresholds, and the first matching action."""

from __future__ import annotations

import polars as pl
import pytest

from fraud_detection.monitoring.decision import DecisionParams, Quality, decide, with_levels

PARAMS = DecisionParams.from_params({
    "thresholds": {"mild": 0.1, "moderate": 0.25, "severe": 0.5}, "retrain_level": "moderate",
    "guardrail": {"min_auc_roc": 0.8, "min_average_precision": 0.4, "rollback_margin": 0.05},
})  # fmt: skip
GOOD, BAD = Quality("2", 1000, 10, 0.9, 0.7, 0.3), Quality("2", 1000, 10, 0.7, 0.3, 0.1)


def table(**psi: float) -> pl.DataFrame:
    return with_levels(pl.DataFrame({"column": list(psi), "psi": list(psi.values())}), PARAMS)


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


def test_bad_params_are_named():
    with pytest.raises(ValueError, match="expected 0 < mild <= moderate <= severe"):
        DecisionParams.from_params({"thresholds": {"mild": 0.3, "moderate": 0.2, "severe": 0.5},
                                    "retrain_level": "moderate", "guardrail": {}})  # fmt: skip
    with pytest.raises(ValueError, match=r"monitor.retrain_level is 'none'; expected one of"):
        DecisionParams.from_params({"thresholds": {"mild": 0.1, "moderate": 0.2, "severe": 0.5},
                                    "retrain_level": "none", "guardrail": {}})  # fmt: skip
