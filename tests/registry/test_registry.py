"""The registry on a real MLflow sqlite store: the gate promotes and refuses, rollback walks back the champions,
the history records every move, concurrent promotions stay consistent, bad input changes nothing."""

from __future__ import annotations

import itertools
import multiprocessing

import pytest

from fraud_detection.registry.gate import CHALLENGER, CHAMPION
from fraud_detection.registry.promotion import force_promote, promote_gated
from fraud_detection.registry.registry import (
    EXTERNAL,
    FORCED,
    GATE,
    ROLLBACK,
    AliasEvent,
    ModelRegistry,
    RegistryAddress,
    RegistryError,
    RegistryUnreachable,
    champion_stack,
)
from tests.conftest import changed
from tests.registry.conftest import LENIENT, Store


def _registered(store: Store, name: str) -> tuple[ModelRegistry, list[int]]:
    registry = store.registry(name)
    versions = [int(registry.register(run, {"source": "test"}).version) for run in store.runs]
    return registry, versions


def _snapshot(registry: ModelRegistry) -> tuple:
    return registry.status()["aliases"], registry.history(), [v.tags for v in registry.versions()]


def test_the_first_candidate_passing_the_floors_becomes_champion(store: Store) -> None:
    registry, (v1, *_) = _registered(store, "first")
    decision, before, events = promote_gated(registry, v1, store.window, "w", LENIENT, "tester")
    assert decision.promoted and before is None and decision.champion is None
    assert registry.alias_version(CHAMPION) == v1
    [event] = events
    assert (event.action, event.alias, event.version, event.previous, event.actor) == (GATE, CHAMPION, v1, None,
                                                                                        "tester")  # fmt: skip
    assert registry.history() == events and event.applied
    tags = registry.version(v1).tags
    assert tags["gate.alias"] == CHAMPION and tags["gate.window"] == "w" and tags["gate.champion_version"] == "none"
    assert float(tags["gate.candidate.auc_roc"]) == pytest.approx(decision.candidate.auc_roc)


def test_a_candidate_failing_a_floor_is_refused_as_challenger(store: Store) -> None:
    registry, (v1, v2, _) = _registered(store, "floors")
    promote_gated(registry, v1, store.window, "w", LENIENT, "tester")
    decision, before, _ = promote_gated(registry, v2, store.window, "w", changed(LENIENT, min_auc_roc=0.9999), "t")
    assert not decision.promoted and before == v1
    assert registry.alias_version(CHAMPION) == v1 and registry.alias_version(CHALLENGER) == v2
    assert any("AUC ROC" in reason and "<" in reason for reason in decision.reasons)
    assert registry.version(v2).tags["gate.alias"] == CHALLENGER


def test_the_candidate_is_compared_with_the_champion_on_the_same_window(store: Store) -> None:
    registry, (v1, v2, v3) = _registered(store, "versus")
    promote_gated(registry, v1, store.window, "w", LENIENT, "tester")
    strict = changed(LENIENT, max_average_precision_drop=0.0)  # must at least match the champion's AP
    decision, _, _ = promote_gated(registry, v2, store.window, "w", strict, "tester")
    assert not decision.promoted and decision.champion is not None
    [check] = [c for c in decision.checks if c.name == "average_precision_vs_champion"]
    assert check.threshold == pytest.approx(decision.champion.average_precision) and not check.passed
    assert [c.name for c in decision.checks if not c.passed] == ["average_precision_vs_champion"]

    decision, _, events = promote_gated(registry, v3, store.window, "w", LENIENT, "tester")
    assert decision.promoted and registry.alias_version(CHAMPION) == v3
    assert [(e.alias, e.version, e.previous) for e in events] == [(CHAMPION, v3, v1)]
    assert registry.alias_version(CHALLENGER) == v2, "the challenger stays what it was"


def test_promoting_the_challenger_takes_its_challenger_alias_off(store: Store) -> None:
    registry, (v1, v2, _) = _registered(store, "takeoff")
    promote_gated(registry, v1, store.window, "w", LENIENT, "tester")
    promote_gated(registry, v2, store.window, "w", changed(LENIENT, min_auc_roc=0.9999), "tester")
    events = force_promote(registry, v2, "tester", "hotfix")
    assert [(e.alias, e.version, e.action) for e in events] == [(CHAMPION, v2, FORCED), (CHALLENGER, None, "remove")]
    assert registry.status()["aliases"] == {CHAMPION: v2}
    assert registry.version(v2).tags["gate.alias"] == "champion (forced)"


def test_rollback_walks_back_through_the_previous_champions(store: Store) -> None:
    registry, (v1, v2, v3) = _registered(store, "rollback")
    for version in (v1, v2, v3):
        force_promote(registry, version, "tester", "step")
    assert registry.rollback("oncall", "bad deploy").version == v2
    event = registry.rollback("oncall", "still bad")
    assert (event.action, event.version, event.previous, event.actor, event.reason) == (ROLLBACK, v1, v2, "oncall",
                                                                                       "still bad")  # fmt: skip
    assert registry.alias_version(CHAMPION) == v1
    before = _snapshot(registry)
    with pytest.raises(RegistryError, match="no previous champion"):
        registry.rollback("oncall", "once more")
    assert _snapshot(registry) == before, "a refused rollback changes nothing"
    force_promote(registry, v3, "tester", "again")
    assert champion_stack(registry.history()) == [v1, v3] and registry.rollback("oncall", "x").version == v1


def test_history_records_every_move_with_time_actor_and_reason(store: Store) -> None:
    registry, (v1, v2, _) = _registered(store, "history")
    promote_gated(registry, v1, store.window, "w", LENIENT, "stage")
    promote_gated(registry, v2, store.window, "w", changed(LENIENT, min_auc_roc=0.9999), "stage")
    force_promote(registry, v2, "alice", "hotfix")
    registry.rollback("bob", "regression")
    history = registry.history()
    assert [e.seq for e in history] == [1, 2, 3, 4, 5]
    assert [(e.action, e.alias, e.version, e.actor) for e in history] == [
        (GATE, CHAMPION, v1, "stage"), (GATE, CHALLENGER, v2, "stage"), (FORCED, CHAMPION, v2, "alice"),
        ("remove", CHALLENGER, None, "alice"), (ROLLBACK, CHAMPION, v1, "bob"),
    ]  # fmt: skip
    assert all(e.applied and e.time.endswith("+00:00") and e.reason for e in history)


def test_a_move_interrupted_by_a_crash_is_finished_and_an_outside_move_is_adopted(store: Store) -> None:
    registry, (v1, v2, v3) = _registered(store, "repair")
    force_promote(registry, v1, "tester", "start")
    # a crash after logging the intent, before moving the alias
    registry._write(AliasEvent(2, "2026-01-01T00:00:00.000+00:00", "tester", FORCED, CHAMPION, v2, v1, "crashed"))
    assert registry.alias_version(CHAMPION) == v1
    # someone sets the challenger in MLflow's UI
    registry.client.set_registered_model_alias(registry.name, CHALLENGER, str(v3))
    force_promote(registry, v3, "tester", "next")  # any locked operation repairs first
    history = registry.history()
    assert history[1].version == v2 and history[1].applied
    assert (history[2].action, history[2].alias, history[2].version) == (EXTERNAL, CHALLENGER, v3)
    assert (history[3].version, history[3].previous) == (v3, v2), "the chain continues from the finished move"


def test_bad_input_is_named_and_changes_nothing(store: Store) -> None:
    registry, (v1, *_) = _registered(store, "bad-input")
    force_promote(registry, v1, "tester", "start")
    before = _snapshot(registry)
    with pytest.raises(RegistryError, match=r"has no version 99; expected one of its versions \[1, 2, 3\]"):
        registry.move(CHAMPION, "99", FORCED, "tester", "x")
    with pytest.raises(RegistryError, match="belongs to model 'other-model'"):
        registry.move(CHAMPION, "other-model/1", FORCED, "tester", "x")
    with pytest.raises(RegistryError, match="not a version number"):
        registry.version("latest")
    with pytest.raises(RegistryError, match="alias 'gold' is not managed"):
        registry.move("gold", v1, FORCED, "tester", "x")
    assert _snapshot(registry) == before
    assert int(registry.version("models:/bad-input/1").version) == 1


def test_a_registry_that_cannot_be_reached_is_an_error_before_any_change(store: Store, tmp_path) -> None:
    with pytest.raises(RegistryUnreachable, match=r"cannot reach the MLflow tracking server at http://127\.0\.0\.1:9"):
        RegistryAddress("http://127.0.0.1:9", str(tmp_path / "lock")).open("fraud-detector")
    missing = tmp_path / "nowhere" / "mlflow.db"
    with pytest.raises(RegistryUnreachable, match="no MLflow store at"):
        RegistryAddress(f"sqlite:///{missing}", str(tmp_path / "lock")).open("fraud-detector")
    assert not missing.parent.exists(), "an operation never creates an empty store"
    with pytest.raises(RegistryError, match="no registered model 'never-registered'"):
        store.registry("never-registered").status()


def _promote_many(uri: str, lock: str, name: str, versions: list[int], barrier) -> list[AliasEvent]:
    registry = RegistryAddress(uri, lock).open(name)
    barrier.wait()
    events = []
    for version in versions:
        events += registry.move(CHAMPION, version, FORCED, f"worker-{versions[0]}", "race")
    return events


def test_concurrent_promotions_leave_a_consistent_registry_and_a_complete_history(store: Store) -> None:
    registry, (v1, v2, v3) = _registered(store, "race")
    lock = str(store.root / "race.lock")
    plans = [[v1, v2, v1, v2, v1, v2], [v3, v1, v3, v1, v3, v1]]
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(len(plans))
        with context.Pool(len(plans)) as pool:
            results = pool.starmap(_promote_many, [(store.uri, lock, "race", plan, barrier) for plan in plans])
    written = sorted((e for events in results for e in events), key=lambda e: e.seq)
    history = registry.history()
    assert history == written, "every move either process made is in the history, once"
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    for before, after in itertools.pairwise(history):
        assert after.previous == before.version, f"event {after.seq} replaced {after.previous}, not {before.version}"
    assert registry.alias_version(CHAMPION) == history[-1].version
    assert len(history) >= 6, "both workers' moves landed"


def test_opening_the_registry_after_feast_prints_no_deprecation_warning(tmp_path) -> None:
    """Feast's import turns every DeprecationWarning on; MLflow's SQL store then warned of SQLAlchemy's `noload` on
    every command that opened the registry (a fresh process: the store's module warns once, when imported)."""
    import subprocess
    import sys

    script = (
        "import feast, warnings\n"
        "from fraud_detection.registry.registry import RegistryAddress\n"
        f"RegistryAddress('sqlite:///{tmp_path}/mlflow.db', '{tmp_path}/lock').open('fraud-detector', create=True)\n"
        "warnings.warn('still shown', DeprecationWarning)\n"  # Feast's filter holds: the check can fail
    )
    stderr = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stderr
    assert "still shown" in stderr and "noload" not in stderr
