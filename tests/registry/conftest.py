"""A real MLflow sqlite store with three logged candidates (small, quick models of different quality: networks
alone; the second is the weakest: 4 hidden units, one epoch at a tenth of the learning rate)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from fraud_detection.evaluation.protocol import labelled_window
from fraud_detection.models.params import TrainParams
from fraud_detection.pipelines.train.nodes import train_candidate
from fraud_detection.registry.candidate import CandidateDataset
from fraud_detection.registry.params import GateParams
from fraud_detection.registry.promotion import force_promote
from fraud_detection.registry.registry import ModelRegistry, RegistryAddress
from tests.conftest import changed

LENIENT = GateParams(
    min_auc_roc=0.5,
    min_average_precision=0.01,
    max_average_precision_drop=1.0,
    max_high_score_share=1.0,
    min_high_score_share=0.0,
    max_latency_ms=1000.0,
)


@dataclass
class Store:
    root: Path
    uri: str
    runs: list[dict[str, str]]  # the candidates' runs, as candidate.json names them
    window: pl.DataFrame  # the gate window (held out of the candidates' training)

    def registry(self, name: str) -> ModelRegistry:
        return RegistryAddress(self.uri, str(self.root / f"{name}.lock")).open(name, create=True)


@pytest.fixture(scope="session")
def store(tmp_path_factory, small_training_set: pl.DataFrame, small_train_params: TrainParams) -> Store:
    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    runs = []
    for seed, epochs, learning_rate, hidden in ((0, 3, 0.003, [16]), (1, 1, 0.0003, [4]), (2, 2, 0.003, [16])):
        params = changed(small_train_params, seed=seed, max_epochs=epochs, learning_rate=learning_rate,
                         hidden_sizes=hidden, boosting={"weight": 0.0})  # fmt: skip
        candidate = train_candidate(small_training_set, params, 7, "v1")
        CandidateDataset(str(root / f"candidate{seed}"), uri, "test", str(root / "artifacts")).save(candidate)
        runs.append(candidate.run)
    window = labelled_window(small_training_set, small_train_params.holdout_days, 7)
    return Store(root, uri, runs, window)


@pytest.fixture
def model(store: Store, request: pytest.FixtureRequest) -> tuple[ModelRegistry, list[int]]:
    """A registered model of this test's own with the three candidates' versions, the first one champion."""
    registry = store.registry(re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[-60:])
    versions = [int(registry.register(run, {"source": "test"}).version) for run in store.runs]
    force_promote(registry, versions[0], "tests", "the champion")
    return registry, versions
