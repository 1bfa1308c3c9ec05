"""From drift and live quality to one action.

Per column (every feature and the score), a drift level from its PSI: `none` below `thresholds.mild`, then `mild`,
`moderate` from `thresholds.moderate`, `severe` from `thresholds.severe` (params.yaml: 0.1 / 0.25 / 0.5; the
usual rules of thumb put 0.1 at "some shift" and 0.25 at "a major shift"; 0.5 marks a shift twice that).

The action, first match wins:
- `rollback`: the champion's live quality (on the labels known by now) is below a guardrail floor
  (the register gate's `min_auc_roc` and `min_average_precision`) while the
  previous champion, on the same transactions, clears every floor and beats the champion's average precision by
  `guardrail.rollback_margin`: going back is safe right now, retraining is not yet;
- `retrain`: some column drifted to `retrain_level` or beyond, or the champion is below the guardrail with no
  better previous champion: the model no longer describes the data it scores;
- `investigate`: some column drifted to `mild` or beyond;
- `none`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    from fraud_detection.monitoring.params import DriftThresholds, MonitorParams
    from fraud_detection.registry.params import GateParams

LEVELS = ("none", "mild", "moderate", "severe")


@dataclass(frozen=True)
class Quality:
    """A model's figures on the labelled window (None where the window lacks a class)."""

    version: str
    rows: int
    frauds: int
    auc_roc: float | None
    average_precision: float | None
    card_precision_at_k: float | None


@dataclass(frozen=True)
class DecisionParams:
    """What the decision weighs: the drift levels and the retrain level (`monitor`), the rollback guardrail's floors
    (the register gate's) and margin (`monitor.guardrail`)."""

    thresholds: DriftThresholds
    retrain_level: str
    floors: dict[str, float]  # Quality field -> its lowest acceptable value
    rollback_margin: float

    @classmethod
    def of(cls, monitor: MonitorParams, gate: GateParams) -> DecisionParams:
        floors = {"auc_roc": gate.min_auc_roc, "average_precision": gate.min_average_precision}
        return cls(monitor.thresholds, monitor.retrain_level, floors, monitor.guardrail.rollback_margin)


def with_levels(table: pl.DataFrame, thresholds: DriftThresholds) -> pl.DataFrame:
    """The drift table with each column's `level`."""
    psi = pl.col("psi")
    level = (pl.when(psi >= thresholds.severe).then(pl.lit("severe"))
             .when(psi >= thresholds.moderate).then(pl.lit("moderate"))
             .when(psi >= thresholds.mild).then(pl.lit("mild"))
             .otherwise(pl.lit("none")))  # fmt: skip
    return table.with_columns(level.alias("level"))


def decide(levelled: pl.DataFrame, champion: Quality, previous: Quality | None, params: DecisionParams) -> dict:
    """The action and why: `levelled` is `with_levels`'s table; `previous` the previous champion on the same
    labelled window (None if there is none)."""
    rank = {name: i for i, name in enumerate(LEVELS)}
    flagged = {row["column"]: row["level"] for row in levelled.iter_rows(named=True) if row["level"] != "none"}
    at_retrain = sorted(c for c, lvl in flagged.items() if rank[lvl] >= rank[params.retrain_level])
    failing = _below_floors(champion, params.floors)
    below = bool(failing)
    better = (below and previous is not None and not _below_floors(previous, params.floors)
              and previous.average_precision >= champion.average_precision + params.rollback_margin)  # fmt: skip
    reasons = []
    if below:
        reasons.append(
            f"champion version {champion.version} on {champion.rows} labelled transactions: "
            + ", ".join(f"{m} {getattr(champion, m):.3f} < {params.floors[m]}" for m in failing)
        )
    if better:
        reasons.append(f"previous champion version {previous.version} clears the floors on the same transactions "
                       f"(auc_roc {previous.auc_roc:.3f}, average_precision {previous.average_precision:.3f}, "
                       f"margin {params.rollback_margin})")  # fmt: skip
    if at_retrain:
        reasons.append(f"drift at {params.retrain_level} or beyond in {at_retrain}")
    if flagged and not at_retrain:
        reasons.append(f"mild drift in {sorted(flagged)}")
    action = ("rollback" if better else "retrain" if at_retrain or below else "investigate" if flagged
              else "none")  # fmt: skip
    return {
        "action": action,
        "reasons": reasons or ["no column drifted and the champion is above the guardrail"],
        "flagged": flagged,
        "champion": asdict(champion),
        "previous_champion": asdict(previous) if previous else None,
    }


def _below_floors(quality: Quality, floors: dict[str, float]) -> list[str]:
    """The figures of `quality` under their floor (a window without both classes fails none)."""
    return [m for m, floor in floors.items() if getattr(quality, m) is not None and getattr(quality, m) < floor]
