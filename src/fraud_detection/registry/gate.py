"""The promotion gate: may a candidate replace the champion?

Both models are scored on the same test window. The candidate is promoted only if it passes every check: absolute
floors on AUC ROC and average precision, average precision not worse than the champion's minus a tolerance, a sane
score distribution, and single-row latency under a budget. Otherwise it becomes the challenger. Every check keeps
its numbers, so a decision can be explained (and recorded) as it was taken.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fraud_detection.registry.params import GateParams

CHAMPION, CHALLENGER, ONLINE = "champion", "challenger", "online"
HIGH_SCORE = 0.5  # a score above this is a "fraud" call, for the score-distribution check
ROLLOUT_REASON = "passed every check: challenger, champion through a rollout (`fraud-detection rollout start`)"


@dataclass(frozen=True)
class WindowFigures:
    """One model on the gate's test window."""

    auc_roc: float
    average_precision: float
    high_score_share: float
    latency_ms: float

    @classmethod
    def measure(cls, labels: np.ndarray, scores: np.ndarray, latency_ms: float) -> WindowFigures:
        from fraud_detection.evaluation.metrics import auc_roc, average_precision  # scikit-learn: seconds to import

        if not np.isfinite(scores).all():
            raise ValueError(f"{int((~np.isfinite(scores)).sum())} scores are NaN or infinite; expected finite scores")
        return cls(
            auc_roc=auc_roc(labels, scores),
            average_precision=average_precision(labels, scores),
            high_score_share=float(np.mean(scores > HIGH_SCORE)),
            latency_ms=float(latency_ms),
        )


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    value: float
    threshold: float
    rule: str  # the check in words, with its numbers


@dataclass(frozen=True)
class Decision:
    alias: str  # champion or challenger
    checks: tuple[Check, ...]
    candidate: WindowFigures
    champion: WindowFigures | None
    via_rollout: bool = False  # passed, but a champion exists: challenger now, champion through a rollout

    @property
    def promoted(self) -> bool:
        return self.alias == CHAMPION

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def reasons(self) -> list[str]:
        """Why: the failed checks, or every check when all passed."""
        failed = [c.rule for c in self.checks if not c.passed]
        rollout = [ROLLOUT_REASON] if self.via_rollout else []
        return failed or rollout + [c.rule for c in self.checks]

    def to_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "promoted": self.promoted,
            "passed": self.passed,
            "via_rollout": self.via_rollout,
            "reasons": self.reasons,
            "checks": [asdict(c) for c in self.checks],
            "candidate": asdict(self.candidate),
            "champion": asdict(self.champion) if self.champion else None,
        }


def decide(candidate: WindowFigures, champion: WindowFigures | None, gate: GateParams) -> Decision:
    """Champion if every check passes (the first model faces the floors only), challenger otherwise."""
    checks = [
        _at_least("auc_roc_floor", candidate.auc_roc, gate.min_auc_roc, "AUC ROC"),
        _at_least("average_precision_floor", candidate.average_precision, gate.min_average_precision, "AP"),
        _at_most("high_score_share_ceiling", candidate.high_score_share, gate.max_high_score_share, "share > 0.5"),
        _at_least("high_score_share_floor", candidate.high_score_share, gate.min_high_score_share, "share > 0.5"),
        _at_most("latency_budget", candidate.latency_ms, gate.max_latency_ms, "p50 latency (ms)"),
    ]
    if champion is not None:
        floor = champion.average_precision - gate.max_average_precision_drop
        checks.append(_at_least("average_precision_vs_champion", candidate.average_precision, floor,
                                f"AP against the champion's {champion.average_precision:.4f} - "
                                f"{gate.max_average_precision_drop}"))  # fmt: skip
    alias = CHAMPION if all(c.passed for c in checks) else CHALLENGER
    return Decision(alias, tuple(checks), candidate, champion)


def _at_least(name: str, value: float, threshold: float, what: str) -> Check:
    passed = value >= threshold
    return Check(name, passed, value, threshold, f"{what} {value:.4f} {'>=' if passed else '<'} {threshold:.4f}")


def _at_most(name: str, value: float, threshold: float, what: str) -> Check:
    passed = value <= threshold
    return Check(name, passed, value, threshold, f"{what} {value:.4f} {'<=' if passed else '>'} {threshold:.4f}")
