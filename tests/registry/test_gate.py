"""The promotion gate decides on numbers and says why (groundwork of the registry issue)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from fraud_detection.registry.gate import CHALLENGER, CHAMPION, WindowFigures, decide
from fraud_detection.registry.params import GateParams
from fraud_detection.runtime.params import ParamsError, checked_params

GATE = GateParams(
    min_auc_roc=0.8,
    min_average_precision=0.5,
    max_average_precision_drop=0.01,
    max_high_score_share=0.05,
    min_high_score_share=0.0001,
    max_latency_ms=5.0,
)
GOOD = WindowFigures(auc_roc=0.86, average_precision=0.63, high_score_share=0.006, latency_ms=0.4)


def _with(**changes: float) -> WindowFigures:
    return WindowFigures(**{**GOOD.__dict__, **changes})


def test_the_first_model_becomes_champion_if_it_passes_the_floors() -> None:
    decision = decide(GOOD, None, GATE)
    assert decision.alias == CHAMPION and decision.promoted
    assert {c.name for c in decision.checks} == {
        "auc_roc_floor", "average_precision_floor", "high_score_share_ceiling", "high_score_share_floor",
        "latency_budget",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("candidate", "failed", "reason"),
    [
        (_with(auc_roc=0.79), "auc_roc_floor", "AUC ROC 0.7900 < 0.8000"),
        (_with(average_precision=0.45), "average_precision_floor", "AP 0.4500 < 0.5000"),
        (_with(high_score_share=0.3), "high_score_share_ceiling", "share > 0.5 0.3000 > 0.0500"),
        (_with(high_score_share=0.0), "high_score_share_floor", "share > 0.5 0.0000 < 0.0001"),
        (_with(latency_ms=12.0), "latency_budget", "p50 latency (ms) 12.0000 > 5.0000"),
        (_with(average_precision=0.61), "average_precision_vs_champion", "AP against the champion's 0.6300"),
    ],
)
def test_one_failed_check_makes_a_challenger_and_says_why(candidate, failed, reason) -> None:
    champion = _with(average_precision=0.46) if failed == "average_precision_floor" else GOOD
    decision = decide(candidate, champion, GATE)
    assert decision.alias == CHALLENGER
    assert [c.name for c in decision.checks if not c.passed] == [failed]
    assert len(decision.reasons) == 1 and decision.reasons[0].startswith(reason)


def test_a_candidate_within_the_tolerance_of_the_champion_is_promoted() -> None:
    decision = decide(_with(average_precision=0.625), GOOD, GATE)
    assert decision.promoted
    assert decision.to_dict()["champion"]["average_precision"] == 0.63


def test_figures_are_measured_on_the_window_and_refuse_nan_scores() -> None:
    labels = np.array([0, 0, 0, 1, 1])
    figures = WindowFigures.measure(labels, np.array([0.1, 0.8, 0.6, 0.7, 0.9]), latency_ms=0.3)
    assert figures.auc_roc == pytest.approx(5 / 6) and figures.high_score_share == pytest.approx(0.8)
    with pytest.raises(ValueError, match="1 scores are NaN or infinite"):
        WindowFigures.measure(labels, np.array([0.1, np.nan, 0.6, 0.7, 0.9]), latency_ms=0.3)


@pytest.mark.parametrize(
    ("gate", "message"),
    [
        ({k: 1 for k in GATE.model_fields if k != "max_latency_ms"}, "gate.max_latency_ms is missing; expected a"),
        ({**GATE.model_dump(), "min_auc_roc": 1.5}, "gate.min_auc_roc=1.5: expected a number in [0, 1]"),
        ({**GATE.model_dump(), "min_high_score_share": 0.1}, "gate: expected min_high_score_share <= max_high_score"),
    ],
)
def test_gate_params_name_what_is_wrong(config_loader, gate: dict, message: str) -> None:
    raw = config_loader["parameters"]
    with pytest.raises(ParamsError, match=re.escape(f"params.yaml register.{message}")):
        checked_params({**raw, "register": {**raw["register"], "gate": gate}})
