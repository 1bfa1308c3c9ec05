"""Gated promotion: score a version and the live champion on the same window, decide, record, move the alias.

Used by the `register` stage (for each new candidate) and by `fraud-detection registry promote VERSION`. The
decision is taken outside the registry lock (scoring takes seconds) and applied under it only if the champion is
still the one it was compared with; if another promotion got there first, the gate runs again against the new one.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from typing import TYPE_CHECKING, Any

from fraud_detection.features.definitions import FEATURES
from fraud_detection.registry.gate import CHALLENGER, CHAMPION, Decision, decide
from fraud_detection.registry.loading import load_model
from fraud_detection.registry.params import GateParams
from fraud_detection.registry.registry import FORCED, GATE, AliasEvent, ModelRegistry, RegistryError
from fraud_detection.registry.scoring import window_figures

if TYPE_CHECKING:
    import polars as pl

ATTEMPTS = 3


class ChampionMoved(RuntimeError):
    pass


def gate_decision(
    registry: ModelRegistry, version: int, window: pl.DataFrame, gate: GateParams
) -> tuple[Decision, int | None]:
    """The gate's decision for `version` against the current champion (if any), both scored on `window`."""
    rows, labels = window.select(FEATURES).to_pandas(), window["tx_fraud"].to_numpy()
    candidate = window_figures(load_model(registry, version).predict_frame, rows, labels)
    champion_version = registry.alias_version(CHAMPION)
    if champion_version is None:
        champion = None
    elif champion_version == version:
        champion = candidate
    else:
        champion = window_figures(load_model(registry, champion_version).predict_frame, rows, labels)
    return decide(candidate, champion, gate), champion_version


def promote_gated(
    registry: ModelRegistry, version: int, window: pl.DataFrame, window_name: str, gate: GateParams, actor: str,
    promotion: str = "direct",
) -> tuple[Decision, int | None, list[AliasEvent]]:  # fmt: skip
    """Gate `version`; champion if it passes, challenger otherwise (a champion is never demoted by a gate).
    With `promotion` "rollout" a passing version becomes challenger while a champion exists (it reaches champion
    through a rollout); the first model still becomes champion. The decision and its numbers are tagged on the
    version; the alias move goes to the history. Returns the decision, the champion it was compared with, and the
    events."""
    for _ in range(ATTEMPTS):
        decision, champion_version = _verdict(registry, version, window, gate, promotion)
        try:
            events = _apply(registry, version, decision, champion_version, actor)
        except ChampionMoved:
            continue
        registry.set_version_tags(version, decision_tags(decision, champion_version, window_name))
        return decision, champion_version, events
    raise RegistryError(f"the champion kept moving while version {version} was being gated; expected a quieter "
                        f"registry: try again")  # fmt: skip


def gate_only(
    registry: ModelRegistry, version: int, window: pl.DataFrame, window_name: str, gate: GateParams,
    promotion: str = "direct", tag: bool = True,
) -> tuple[Decision, int | None]:  # fmt: skip
    """`promote_gated`'s verdict without its move, for a run inside a DVC experiment: no alias moves, no history
    event is written; with `tag` the verdict goes to the version's tags (`gate.alias` says it was not applied)."""
    decision, champion_version = _verdict(registry, version, window, gate, promotion)
    if tag:
        tags = decision_tags(decision, champion_version, window_name)
        tags["gate.alias"] = f"{decision.alias} (not applied: experiment {registry.dvc_experiment})"
        registry.set_version_tags(version, tags)
    return decision, champion_version


def _verdict(
    registry: ModelRegistry, version: int, window: pl.DataFrame, gate: GateParams, promotion: str
) -> tuple[Decision, int | None]:
    """The gate's decision, a passing version made challenger when `promotion` is "rollout" and a champion exists."""
    decision, champion_version = gate_decision(registry, version, window, gate)
    if promotion == "rollout" and decision.promoted and champion_version not in (None, version):
        decision = replace(decision, alias=CHALLENGER, via_rollout=True)
    return decision, champion_version


def force_promote(registry: ModelRegistry, version: int, actor: str, reason: str) -> list[AliasEvent]:
    """Champion without the gate, recorded as forced."""
    registry.set_version_tags(version, {"gate.alias": f"{CHAMPION} (forced)", "gate.forced_reason": reason})
    return registry.move(CHAMPION, version, FORCED, actor, reason or "forced")


def decision_tags(decision: Decision, champion_version: int | None, window_name: str) -> dict[str, str]:
    tags = {
        "gate.alias": decision.alias,
        "gate.window": window_name,
        "gate.champion_version": str(champion_version) if champion_version else "none",
        "gate.reasons": json.dumps(decision.reasons),
        "gate.checks": json.dumps([asdict(c) for c in decision.checks], separators=(",", ":")),
    }
    for role, figures in (("candidate", decision.candidate), ("champion", decision.champion)):
        for key, value in (asdict(figures) if figures else {}).items():
            tags[f"gate.{role}.{key}"] = repr(value)
    return tags


def _apply(
    registry: ModelRegistry, version: int, decision: Decision, champion_version: int | None, actor: str
) -> list[AliasEvent]:
    reason = "gate: " + "; ".join(decision.reasons)
    with registry.locked():
        if registry.alias_version(CHAMPION) != champion_version:
            raise ChampionMoved
        if decision.alias == CHALLENGER and champion_version == version:
            return []  # the champion failing a re-run of its own gate stays champion; rollback demotes
        return registry.move_locked(decision.alias, version, GATE, actor, reason)


def report(
    registry: ModelRegistry,
    version: int,
    decision: Decision,
    champion_before: int | None,
    events: list[AliasEvent],
    window: dict[str, Any],
) -> dict[str, Any]:
    """reports/promotion.json: what was decided for which version, why, on which numbers."""
    return {
        "model": registry.name,
        "version": version,
        "champion_before": champion_before,
        "aliases": registry.status()["aliases"],
        "window": window,
        "decision": decision.to_dict(),
        "events": [asdict(e) for e in events],
    }
