"""Inside `dvc exp run` (DVC sets DVC_EXP_NAME in the stages' environment) the register and batch_predict stages change
nothing outside the experiment: the candidate becomes a version tagged with the experiment's name and its gate
verdict, but no alias moves and no history event is written; scored batches are not published to the risk store.
Outside an experiment the same nodes promote and publish as usual. On a real MLflow sqlite store (the `store`
fixture's logged candidates) and a real SQLite risk store, through the catalog's registry dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

from fraud_detection.batch.risk_store import SqliteRiskStore
from fraud_detection.pipelines.batch_predict.nodes import Scored, publish_batches, serving_ref
from fraud_detection.pipelines.register.nodes import EXPERIMENT_TAG, register_and_gate
from fraud_detection.registry.candidate import Candidate
from fraud_detection.registry.dataset import DVC_EXP_NAME, ModelRegistryDataset, dvc_experiment_name
from fraud_detection.registry.gate import CHALLENGER, CHAMPION, ONLINE
from fraud_detection.registry.params import RegisterParams
from fraud_detection.registry.promotion import force_promote
from fraud_detection.registry.registry import GATE, ModelRegistry, RegistryError
from tests.registry.conftest import LENIENT, Store

EXPERIMENT = "lucky-lr"
LINEAGE = {"data_hash": "d-experiment", "training_set_md5": "md5-experiment"}


def carrying(run: dict[str, str]) -> Candidate:
    """The register node reads only the candidate's run (candidate.json's run_id, model_uri, model_id)."""
    return Candidate(scorer=None, params={}, metrics={}, history=[], tags={}, input_example=pd.DataFrame(), run=run)


def state(registry: ModelRegistry) -> tuple[dict[str, int], list, dict | None]:
    """Everything an experiment must leave as it found: aliases, the alias history, the serving experiment."""
    return registry.status()["aliases"], registry.history(), registry.experiment()


@pytest.fixture
def world(store: Store, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """A registered model of this test's own with a champion (the first candidate), a challenger (the second) and
    an online version (the second), and the catalog's registry entry for it. DVC_EXP_NAME unset to begin with."""
    monkeypatch.delenv(DVC_EXP_NAME, raising=False)
    name = f"exp-{request.node.name[-40:]}".replace("[", "-").replace("]", "")
    dataset = ModelRegistryDataset(store.uri, str(store.root / f"{name}.lock"))
    registry = dataset.load().open(name, create=True)
    first, second = (int(registry.register(run, {"source": "baseline"}).version) for run in store.runs[:2])
    force_promote(registry, first, "tests", "the champion")
    registry.move(CHALLENGER, second, GATE, "tests", "the challenger")
    registry.move(ONLINE, second, "online-publish", "tests", "the online learner's model")
    return dataset, name, registry


def params(name: str) -> RegisterParams:
    """A gate every one of the small candidates passes, applied directly: outside an experiment it promotes."""
    return RegisterParams(model_name=name, promotion="direct", gate=LENIENT)


def test_inside_an_experiment_the_candidate_is_registered_and_gated_but_no_alias_moves(
    world, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset, name, registry = world
    before = state(registry)
    monkeypatch.setenv(DVC_EXP_NAME, EXPERIMENT)
    report = register_and_gate(carrying(store.runs[2]), LINEAGE, store.window, dataset.load(), params(name))

    assert report["decision"]["alias"] == CHAMPION, "the verdict: it would have become champion"
    assert report["experiment"] == {"name": EXPERIMENT, "applied": False, "version_registered_here": True}
    assert report["events"] == [] and report["aliases"] == before[0] == {CHAMPION: 1, CHALLENGER: 2, ONLINE: 2}
    version = registry.version(report["version"])
    assert report["version"] == 3 and version.tags[EXPERIMENT_TAG] == EXPERIMENT
    assert version.tags["data_hash"] == "d-experiment" and version.tags["candidate_run_id"] == store.runs[2]["run_id"]
    assert version.tags["gate.alias"] == f"{CHAMPION} (not applied: experiment {EXPERIMENT})"
    assert version.tags["gate.champion_version"] == "1" and "gate.candidate.average_precision" in version.tags
    assert state(registry) == before, "aliases, history and the serving experiment exactly as they were"

    again = register_and_gate(carrying(store.runs[2]), LINEAGE, store.window, dataset.load(), params(name))
    assert again["version"] == 3 and state(registry) == before, "a re-run finds its version, still moves nothing"
    assert serving_ref(report, EXPERIMENT) == 3, "the experiment's batch_predict scores with what would serve"
    assert serving_ref(report, None) == serving_ref({}, EXPERIMENT) == CHAMPION, "outside it (or no verdict): champion"


def test_outside_an_experiment_the_same_candidate_is_promoted_as_usual(world, store: Store, monkeypatch) -> None:
    dataset, name, registry = world
    monkeypatch.setenv(DVC_EXP_NAME, EXPERIMENT)
    register_and_gate(carrying(store.runs[2]), LINEAGE, store.window, dataset.load(), params(name))
    history = registry.history()
    monkeypatch.delenv(DVC_EXP_NAME)  # `dvc exp apply`, then the stage forced outside the experiment

    report = register_and_gate(carrying(store.runs[2]), LINEAGE, store.window, dataset.load(), params(name))
    assert "experiment" not in report and report["version"] == 3, "the version the experiment registered"
    assert registry.status()["aliases"] == {CHAMPION: 3, CHALLENGER: 2, ONLINE: 2}
    [moved] = registry.history()[len(history) :]
    assert (moved.action, moved.alias, moved.version, moved.previous) == (GATE, CHAMPION, 3, 1)
    assert registry.version(3).tags["gate.alias"] == CHAMPION


def test_a_version_registered_outside_the_experiment_keeps_its_tags(world, store: Store, monkeypatch) -> None:
    """An experiment that did not re-train (say `-S register.gate.min_auc_roc=...`) gates the baseline's candidate:
    the verdict goes to the experiment's report only."""
    dataset, name, registry = world
    before, tags = state(registry), registry.version(1).tags
    monkeypatch.setenv(DVC_EXP_NAME, EXPERIMENT)
    report = register_and_gate(carrying(store.runs[0]), LINEAGE, store.window, dataset.load(), params(name))
    assert report["version"] == 1 and report["experiment"]["version_registered_here"] is False
    assert registry.version(1).tags == tags and EXPERIMENT_TAG not in tags
    assert state(registry) == before


def test_a_registry_opened_inside_an_experiment_refuses_every_move(world, monkeypatch) -> None:
    dataset, name, registry = world
    before = state(registry)
    monkeypatch.setenv(DVC_EXP_NAME, EXPERIMENT)
    inside = dataset.load().open(name)
    assert inside.dvc_experiment == EXPERIMENT
    refused = rf"refusing to .* of '{name}' inside DVC experiment '{EXPERIMENT}' \(DVC_EXP_NAME\).*dvc exp apply"
    with pytest.raises(RegistryError, match=rf"refusing to move alias 'champion' to version 2 of '{name}' inside"):
        inside.move(CHAMPION, 2, "promote", "tests", "inside an experiment")
    with pytest.raises(RegistryError, match=refused):
        inside.rollback("tests", "inside an experiment")
    with pytest.raises(RegistryError, match=refused), inside.locked():
        inside.set_experiment_locked({"name": "r", "versions": {CHALLENGER: 2}}, "rollout-start", "tests", "x")
    assert state(registry) == before


def test_the_experiment_is_read_from_dvc_exp_name(monkeypatch) -> None:
    assert dvc_experiment_name({DVC_EXP_NAME: "lucky-lr"}) == "lucky-lr"
    assert dvc_experiment_name({}) is None and dvc_experiment_name({DVC_EXP_NAME: "  "}) is None
    dataset = ModelRegistryDataset("sqlite:///unused.db", "unused.lock")
    monkeypatch.delenv(DVC_EXP_NAME, raising=False)
    assert dataset.load().dvc_experiment is None
    monkeypatch.setenv(DVC_EXP_NAME, "exp-3f2a1")
    assert dataset.load().dvc_experiment == "exp-3f2a1"


def batch(day: str, customers: range, seed: int) -> tuple[Scored, dict]:
    """A batch that passed the gate, as score_days hands it to the publish step, and its report entry."""
    scores = np.random.default_rng(seed).random(len(customers))
    cards = pl.DataFrame({"customer_id": list(customers), "risk": scores, "transactions": [1] * len(customers),
                          "riskiest_transaction": [seed * 10_000 + c for c in customers]})  # fmt: skip
    return Scored(day, "1", cards, scores), {"status": "published", "cards": len(cards), "model_version": "1"}


def test_inside_an_experiment_no_batch_is_published(world, tmp_path, monkeypatch) -> None:
    dataset, _, _ = world
    store = SqliteRiskStore(tmp_path / "risk.db")
    first, entry = batch("2018-05-29", range(50), seed=1)
    publish_batches([first], store, {first.day: entry}, dataset.load())
    published, cards = store.published(), {c: store.lookup(c) for c in range(60)}

    second, entry = batch("2018-05-30", range(10, 60), seed=2)
    monkeypatch.setenv(DVC_EXP_NAME, EXPERIMENT)
    report = publish_batches([second], store, {second.day: dict(entry)}, dataset.load())
    assert report["published"] == [] and report["unpublished"] == [second.day] and report["experiment"] == EXPERIMENT
    assert report["days"][second.day]["status"] == "unpublished" and EXPERIMENT in report["days"][second.day]["reason"]
    assert store.published() == published and {c: store.lookup(c) for c in range(60)} == cards, "the store as it was"

    monkeypatch.delenv(DVC_EXP_NAME)
    usual = publish_batches([second], store, {second.day: dict(entry)}, dataset.load())
    assert usual["published"] == [second.day] and "unpublished" not in usual
    assert sorted(store.published()) == [first.day, second.day] and store.lookup(55)["batch_date"] == second.day
