"""`fraud-detection registry ...` in-process, on a real MLflow sqlite store: what it prints, what it changes, and
that bad input changes nothing (exit status 2). tests/test_dvc_repro.py runs it on a project after `dvc repro`."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
from kedro.io import DataCatalog, MemoryDataset

from fraud_detection import cli
from fraud_detection.cli import common
from fraud_detection.registry.dataset import ModelRegistryDataset
from fraud_detection.registry.gate import CHALLENGER, CHAMPION
from fraud_detection.registry.promotion import promote_gated
from fraud_detection.runtime.params import Params
from tests.conftest import changed
from tests.registry.conftest import LENIENT, Store

MODEL_NAMES = (f"cli-model-{i}" for i in itertools.count())


@dataclass
class Project:
    store: Store
    name: str  # a registered model of its own: versions 1, 2, 3 (the store's runs), version 1 champion
    params: Params

    def registry(self):
        return self.store.registry(self.name)


@pytest.fixture
def project(store: Store, small_training_set, params: Params, monkeypatch: pytest.MonkeyPatch) -> Project:
    """The CLI's configuration: the project's params with a lenient gate, a catalog on the test store."""
    name = next(MODEL_NAMES)
    registry = store.registry(name)
    for run in store.runs:
        registry.register(run, {})
    promote_gated(registry, 1, store.window, "w", LENIENT, "stage")
    gate = {
        "min_auc_roc": 0.5,
        "min_average_precision": 0.01,
        "max_average_precision_drop": 1.0,
        "min_high_score_share": 0.0,
        "max_high_score_share": 1.0,
    }  # the small set is 11 % fraud, and the weakest model (one slow epoch) flags most of it
    catalog = DataCatalog({
        "model_registry": ModelRegistryDataset(store.uri, str(store.root / f"{name}.lock")),
        "training_set": MemoryDataset(small_training_set),
    })  # fmt: skip
    project = Project(store, name, changed(params, register={"model_name": name, "gate": gate}))
    monkeypatch.setattr(common, "context", lambda env: SimpleNamespace(params=project.params, catalog=catalog))
    return project


def _run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str, str]:
    code = cli.main(["registry", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_status_shows_versions_aliases_and_metrics(project: Project, capsys) -> None:
    code, out, _ = _run(capsys, "status")
    assert code == 0 and f"{project.name} at {project.store.uri}: champion = version 1" in out
    lines = out.splitlines()
    header, *rows = lines[next(i for i, line in enumerate(lines) if line.startswith("version")) :]
    assert header.split()[:4] == ["version", "aliases", "created", "gate"] and len(rows) == 3
    status = json.loads(_run(capsys, "status", "--json")[1])
    assert status["aliases"][CHAMPION] == 1 and status["versions"][0]["gate_auc_roc"] > 0.5


def test_promote_gated_forced_rollback_and_history(project: Project, capsys) -> None:
    code, out, _ = _run(capsys, "promote", "2", "--actor", "alice")
    assert code == 0 and "version 2 is champion" in out and "gate window" in out
    code, out, _ = _run(capsys, "promote", f"{project.name}/3", "--force", "--reason", "hotfix", "--actor", "bob")
    assert code == 0 and "version 3 is champion (forced" in out
    code, out, _ = _run(capsys, "rollback", "--reason", "regression", "--actor", "carol")
    assert code == 0 and "from version 3 to version 2" in out
    history = json.loads(_run(capsys, "history", "--json")[1])
    assert [(e["action"], e["version"], e["actor"]) for e in history[-3:]] == [
        ("gate", 2, "alice"), ("force-promote", 3, "bob"), ("rollback", 2, "carol")]  # fmt: skip
    code, out, _ = _run(capsys, "history")
    assert code == 0 and ["seq", "time", "actor", "action", "alias", "move", "reason"] in [
        line.split() for line in out.splitlines()
    ]
    assert "3 -> 2" in out.splitlines()[-1]


def test_a_refused_promotion_says_why(project: Project, capsys) -> None:
    project.params = changed(project.params, register={"gate": {"min_auc_roc": 0.9999}})  # the context reads it
    code, out, _ = _run(capsys, "promote", "3")
    assert code == 0 and "fails the gate: challenger" in out and "AUC ROC" in out
    assert project.registry().alias_version(CHALLENGER) == 3 and project.registry().alias_version(CHAMPION) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("promote", "42"), "has no version 42"),
        (("promote", "other-model/1"), "belongs to model 'other-model'"),
        (("promote", "abc", "--force"), "is not a version number"),
    ],
)
def test_bad_input_exits_2_with_the_reason_and_changes_nothing(project: Project, capsys, args, message) -> None:
    registry = project.registry()
    before = (registry.status()["aliases"], registry.history())
    code, out, err = _run(capsys, *args)
    assert code == 2 and message in err and out == ""
    assert (registry.status()["aliases"], registry.history()) == before


def test_an_unreachable_registry_exits_2(project: Project, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog = DataCatalog({"model_registry": ModelRegistryDataset("http://127.0.0.1:9", "unused.lock")})
    context = SimpleNamespace(params=project.params, catalog=catalog)
    monkeypatch.setattr(common, "context", lambda env: context)
    code, _, err = _run(capsys, "rollback")
    assert code == 2 and "cannot reach the MLflow tracking server at http://127.0.0.1:9" in err
