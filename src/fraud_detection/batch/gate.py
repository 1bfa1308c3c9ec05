"""The validation gate a batch passes before it is published: every transaction scored, every score a probability,
and the score distribution close to the previous published batch's (PSI under `batch_predict.gate.max_psi`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fraud_detection.batch.params import BatchGateParams
from fraud_detection.monitoring.drift import psi


@dataclass(frozen=True)
class GateResult:
    passed: bool
    reasons: list[str] = field(default_factory=list)
    psi: float | None = None  # None: no previous batch to compare with


def check(
    expected_rows: int, scores: np.ndarray, previous_scores: np.ndarray | None, params: BatchGateParams
) -> GateResult:
    reasons = []
    if len(scores) != expected_rows:
        reasons.append(f"{len(scores)} of {expected_rows} transactions scored; expected every one")
    bad = int(np.sum(~np.isfinite(scores) | (scores < 0) | (scores > 1)))
    if bad:
        reasons.append(f"{bad} scores are NaN, infinite or outside [0, 1]; expected probabilities")
    shift = None
    if previous_scores is not None and len(previous_scores) and len(scores) and not bad:
        shift = psi(previous_scores, scores, params.psi_bins)
        if shift > params.max_psi:
            reasons.append(f"score PSI {shift:.3f} against the previous published batch; expected at most "
                           f"{params.max_psi} (params batch_predict.gate.max_psi)")  # fmt: skip
    return GateResult(not reasons, reasons, shift)
