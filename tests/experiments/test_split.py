"""A split (A/B/C) as registry state: started and stopped as events of the registry's history, served as the
service's plan (aliases or versions, their shares, the shadow), one experiment at a time, bad input refused with
nothing changed."""

from __future__ import annotations

import pytest

from fraud_detection.experiments import rollout
from fraud_detection.experiments.split import SPLIT_START, SPLIT_STOP, ExperimentRunning, start_split, stop_split
from fraud_detection.registry.promotion import force_promote
from fraud_detection.registry.registry import ModelRegistry, RegistryError
from fraud_detection.serving.assembly import serving_plan
from tests.conftest import changed
from tests.registry.conftest import Store, store

__all__ = ["store"]


@pytest.fixture
def registry(store: Store, request) -> ModelRegistry:
    """A registered model of three versions: 1 champion, 2 challenger, 3 neither."""
    registry = store.registry(f"split-{request.node.name[:40]}")
    for run in store.runs:
        registry.register(run, {"source": "test"})
    force_promote(registry, 1, "tests", "setup")
    registry.move("challenger", 2, "promote", "tests", "setup")
    return registry


def test_a_split_of_three_serves_aliases_and_a_version_until_stopped(registry: ModelRegistry, params) -> None:
    shares = {"champion": 0.8, "challenger": 0.1, "3": 0.1}
    state = start_split(registry, "abc-1", shares, None, None, None, "tester")
    assert registry.experiment() == state and state["versions"] == {"champion": 1, "challenger": 2, "3": 3}
    plan = serving_plan(registry, params.serve)
    assert plan.router.salt == "abc-1" and plan.router.variants == ("champion", "challenger", "3")
    assert plan.versions == {"3": 3, "challenger": 2, "champion": 1} and plan.shadow is None
    routed = [plan.router.variant(customer) for customer in range(20_000)]
    assert routed.count("3") / len(routed) == pytest.approx(0.1, abs=0.01)

    with pytest.raises(ExperimentRunning, match="experiment abc-1 is running"):
        rollout.start(registry, "challenger", params.rollout, None, "tester")
    stopped = stop_split(registry, "tester", "enough")
    assert stopped["status"] == "stopped"
    assert [e.action for e in registry.history() if e.experiment] == [SPLIT_START, SPLIT_STOP]
    plan = serving_plan(registry, params.serve)
    assert plan.router.variants == tuple(params.serve.ab.variants), "stopped: params.yaml serve.ab again"
    tick_state, verdict = rollout.tick(registry, None, params.experiment, 7, "tester")
    assert verdict is None and tick_state["status"] == "stopped", "a tick leaves a split alone"


def test_a_shadow_is_served_in_the_plan(registry: ModelRegistry, params) -> None:
    start_split(registry, "ab-shadow", {"champion": 0.9, "challenger": 0.1}, "3", "salt-x", None, "tester")
    plan = serving_plan(registry, params.serve)
    assert (plan.shadow, plan.router.salt, plan.versions["3"]) == ("3", "salt-x", 3)


@pytest.mark.parametrize(("shares", "shadow", "message"), [
    ({"champion": 0.8, "challenger": 0.1}, None, "summing to 1"),
    ({"champion": 1.0}, None, "at least one treatment"),
    ({"champion": 0.5, "nobody": 0.5}, None, "'nobody': no such alias"),
    ({"champion": 0.5, "9": 0.5}, None, "has no version 9"),
    ({"champion": 0.5, "challenger": 0.5}, "nobody", "'nobody': no such alias"),
])  # fmt: skip
def test_bad_input_is_refused_and_changes_nothing(registry: ModelRegistry, shares, shadow, message) -> None:
    before = registry.history()
    with pytest.raises(RegistryError, match=message):
        start_split(registry, "bad", shares, shadow, None, None, "tester")
    assert registry.history() == before and registry.experiment() is None
    with pytest.raises(RegistryError, match="no split experiment is running"):
        stop_split(registry, "tester", "nothing to stop")


def test_a_running_rollout_blocks_a_split(registry: ModelRegistry, params) -> None:
    rollout.start(registry, "challenger", changed(params.rollout, steps=[5, 100]), None, "tester")
    with pytest.raises(ExperimentRunning, match="rollout abort"):
        start_split(registry, "ab", {"champion": 0.5, "3": 0.5}, None, None, None, "tester")
