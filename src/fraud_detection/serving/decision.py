"""From a score to what the payment system does, and the rules that stand in when the model cannot score.

`decide`: approve below `serve.thresholds.review`, decline at or above `serve.thresholds.decline`, review between.

`rule_score` is the documented fallback (`degraded: true`): the handbook's scenarios as rules on the features that
are always available. An amount above `simulate.fraud.amount_threshold` (scenario 1) scores 0.9; a terminal whose
known fraud rate over the last 7 days is at least `serve.fallback.terminal_risk` (scenario 2) scores 0.8; an amount
at least `serve.fallback.amount_ratio` times the customer's 30-day mean (scenario 3) scores 0.6; anything else 0.01
(`NO_RULE`).

The rules are also a floor under the model when the features were defaulted (online store down, customer or terminal
unknown): the model then sees a card or terminal with no history, which it rarely met in training (a card's first
transaction), and scored a 3,000 amount on an unknown card at 4e-6. A transaction a rule flags is then scored at
least as the rule scores it (the shadow too, so that the two compare like for like).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fraud_detection.serving.params import FallbackParams, Thresholds

RULES_VERSION = "rules"  # the model_version of an answer the rules gave (the model failed, or could not score)


def decide(probability: float, thresholds: Thresholds) -> str:
    if probability >= thresholds.decline:
        return "decline"
    return "review" if probability >= thresholds.review else "approve"


@dataclass(frozen=True)
class FallbackRules:
    amount_threshold: float  # simulate.fraud.amount_threshold (scenario 1)
    terminal_risk: float
    amount_ratio: float

    @classmethod
    def of(cls, fallback: FallbackParams, amount_threshold: float) -> FallbackRules:
        return cls(amount_threshold, fallback.terminal_risk, fallback.amount_ratio)


NO_RULE = 0.01  # the rules' score when none of them flags the transaction


def rule_score(features: dict[str, float], rules: FallbackRules) -> float:
    if features["tx_amount"] > rules.amount_threshold:
        return 0.9
    if features["terminal_risk_7d"] >= rules.terminal_risk:
        return 0.8
    if features["tx_amount_over_customer_avg_30d"] >= rules.amount_ratio:
        return 0.6
    return NO_RULE
