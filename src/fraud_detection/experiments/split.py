"""An A/B (or A/B/C) split as registry state: `fraud-detection experiment start NAME --shares ... [--shadow ...]`.

What serves is the running experiment in the registry (`ModelRegistry.experiment`), else params.yaml `serve.ab`
and `serve.shadow`: every worker's reload watcher, and `traffic run` in process, apply a change without a restart.
A split names its variants (registry aliases or version numbers, the control first) with their shares, the shadow,
and a salt (its name unless given): each treatment grows in its own lane of the hash, so a customer keeps its
variant while its share grows (serving/routing.py). A rollout (`rollout.py`) is the other kind of experiment; one
runs at a time. Every start and stop is an event of the registry's history, under its lock.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from fraud_detection.registry.registry import RUNNING, RegistryError
from fraud_detection.serving.params import ABParams

if TYPE_CHECKING:
    from fraud_detection.registry.registry import ModelRegistry

SPLIT, ROLLOUT = "split", "rollout"  # the kinds of experiment
STOPPED = "stopped"
SPLIT_START, SPLIT_STOP = "split-start", "split-stop"  # its events


class ExperimentRunning(RegistryError):
    """Another experiment (a split or a rollout) decides what serves: nothing changed."""


def refuse_if_running(registry: ModelRegistry) -> None:
    """For a caller holding the lock: one experiment at a time."""
    current = registry.experiment()
    if current and current["status"] == RUNNING:
        stop = "rollout abort" if current.get("kind", ROLLOUT) == ROLLOUT else "experiment stop"
        raise ExperimentRunning(f"experiment {current['name']} is running; expected it to finish or "
                                f"`fraud-detection {stop}` first")  # fmt: skip


def resolve(registry: ModelRegistry, ref: str) -> int:
    """The version an alias or a version number names (RegistryError if none)."""
    if str(ref).isdigit():
        return int(registry.version(ref).version)
    version = registry.alias_version(ref)
    if version is None:
        raise RegistryError(f"{ref!r}: no such alias of {registry.name!r}; expected a version number or one of "
                            f"{sorted(registry.status()['aliases'])}")  # fmt: skip
    return version


def start_split(registry: ModelRegistry, name: str, shares: dict[str, float], shadow: str | None, salt: str | None,
                data_time: datetime | None, actor: str) -> dict[str, Any]:  # fmt: skip
    """Serve `shares` ({alias or version: share}, the control first) and `shadow` from now on. `data_time`: the
    latest transaction served so far (the split's rows are those after it). Returns the state."""
    try:
        ABParams(salt=salt or name, variants=shares)
    except ValidationError as error:
        problem = error.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise RegistryError(f"--shares {shares}: expected {problem}") from None
    if len(shares) < 2:
        raise RegistryError(f"--shares {shares}: expected the control and at least one treatment")
    with registry.locked():
        refuse_if_running(registry)
        versions = {ref: resolve(registry, ref) for ref in [*shares, *([shadow] if shadow else [])]}
        moment = data_time.isoformat() if data_time else None
        state = {"name": name, "kind": SPLIT, "status": RUNNING, "salt": salt or name, "variants": dict(shares),
                 "shadow": shadow, "versions": versions, "started": moment, "step_started": moment}  # fmt: skip
        described = ", ".join(f"{ref} {share:.0%}" for ref, share in shares.items())
        described += f", shadow {shadow}" if shadow else ""
        registry.set_experiment_locked(state, SPLIT_START, actor, f"{name}: {described}")
        return state


def stop_split(registry: ModelRegistry, actor: str, reason: str) -> dict[str, Any]:
    """End the running split: params.yaml `serve` decides what serves again."""
    with registry.locked():
        state = registry.experiment()
        if not state or state["status"] != RUNNING or state.get("kind", ROLLOUT) != SPLIT:
            raise RegistryError("no split experiment is running; expected `fraud-detection experiment start` first "
                                "(a rollout ends with `fraud-detection rollout abort`)")  # fmt: skip
        new = {**state, "status": STOPPED}
        registry.set_experiment_locked(new, SPLIT_STOP, actor, f"{state['name']}: stopped: {reason}")
        return new
