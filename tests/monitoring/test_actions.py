"""Acting on a decision: rollback moves the registry's champion back and re-scores the batch; retrain runs the
pipeline again; a decision about a champion that has since moved is refused; a failing command stops the action."""

from __future__ import annotations

import pytest

from fraud_detection.monitoring.actions import AFTER_ROLLBACK, RETRAIN, ActionFailed, act, monitor_again
from fraud_detection.pipelines.train.nodes import train_candidate
from fraud_detection.registry.candidate import CandidateDataset
from fraud_detection.registry.promotion import force_promote
from fraud_detection.registry.registry import RegistryAddress, RegistryError
from tests.conftest import changed


@pytest.fixture
def registry(tmp_path, small_training_set, small_train_params):
    """A registry whose champion is version 2, promoted after version 1."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry = RegistryAddress(uri, str(tmp_path / "registry.lock")).open("fraud-detector", create=True)
    for seed in (0, 1):
        params = changed(small_train_params, seed=seed, max_epochs=1)
        candidate = train_candidate(small_training_set, params, label_delay_days=7, feature_service="v1")
        CandidateDataset(str(tmp_path / f"c{seed}"), uri, "actions", str(tmp_path / "artifacts")).save(candidate)
        version = registry.register(candidate.run, candidate.tags).version
        force_promote(registry, int(version), "tests", "actions fixture")
    return registry


class Commands:
    def __init__(self, fail_on: tuple[str, ...] | None = None) -> None:
        self.ran, self.fail_on = [], fail_on

    def __call__(self, command) -> int:
        self.ran.append(tuple(command))
        return 1 if tuple(command) == self.fail_on else 0


def decision(action: str, champion: str = "2") -> dict:
    return {"action": action, "reasons": ["test"], "champion": {"version": champion}}


def test_rollback_moves_the_champion_back_then_rescores_and_monitors(registry):
    commands = Commands()
    done = act(decision("rollback"), registry, commands)
    assert registry.alias_version("champion") == 1 and done["champion"] == 1 and done["was"] == 2
    assert commands.ran == list(AFTER_ROLLBACK)
    assert registry.history()[-1].action == "rollback" and "monitor: test" in registry.history()[-1].reason


def test_a_decision_about_another_champion_is_refused(registry):
    with pytest.raises(RegistryError, match="the decision is about champion version 1 but the champion is now 2"):
        act(decision("rollback", champion="1"), registry, Commands())
    assert registry.alias_version("champion") == 2


def test_retrain_runs_the_pipeline_and_stops_at_a_failing_command(registry):
    commands = Commands()
    assert act(decision("retrain"), registry, commands)["ran"] == [" ".join(c) for c in RETRAIN]
    assert commands.ran == list(RETRAIN)
    failing = Commands(fail_on=RETRAIN[0])
    with pytest.raises(ActionFailed, match="exited with status 1; expected 0"):
        act(decision("retrain"), registry, failing)
    assert failing.ran == [RETRAIN[0]]


@pytest.mark.parametrize("action", ["none", "investigate"])
def test_nothing_to_run(registry, action):
    commands = Commands()
    assert act(decision(action), registry, commands) == {"action": action, "ran": []} and commands.ran == []


def test_monitor_again_forces_the_stage_only_when_dvc_skipped_it():
    skipped, ran = Commands(), Commands()
    monitor_again(skipped, stage_ran=lambda: False)
    monitor_again(ran, stage_ran=lambda: True)
    assert skipped.ran == [("dvc", "repro", "monitor"), ("dvc", "repro", "--force", "--single-item", "monitor"),
                           ("dvc", "repro")]  # fmt: skip
    assert ran.ran == [("dvc", "repro", "monitor"), ("dvc", "repro")]
