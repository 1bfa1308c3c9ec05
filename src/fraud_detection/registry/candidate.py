"""The trained candidate: what the `train` stage produces and the `register` stage picks up.

Saving a `Candidate` logs one MLflow run (parameters, per-epoch metrics, lineage tags, the pyfunc model with
signature and input example), then writes the candidate folder (`scorer/` files + `candidate.json` naming the run
and the logged model) in one atomic rename. A crash leaves the previous candidate or none; a run that failed half
way is marked FAILED in MLflow and never becomes a candidate. Under DDP only global rank 0 writes anything.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset

from fraud_detection.datasets.atomic import atomic_folder
from fraud_detection.models.scorer import FraudScorer
from fraud_detection.registry.lineage import flatten, folder_bytes, git_commit

log = logging.getLogger(__name__)

CANDIDATE_FILE = "candidate.json"
SCORER_FOLDER = "scorer"
MODEL_NAME = "model"


@dataclass
class Candidate:
    scorer: FraudScorer
    params: dict[str, Any]  # every param the model depends on (logged flattened)
    metrics: dict[str, float]  # final figures: best validation scores, duration, throughput, sizes
    history: list[dict[str, float]]  # per-epoch metrics
    tags: dict[str, str]  # lineage: data hash, params hash, feature service, training window
    input_example: pd.DataFrame  # a few raw feature rows, for the model's signature
    global_rank: int = 0
    run: dict[str, str] = field(default_factory=dict)  # run_id, model_uri, ... once saved


class CandidateDataset(AbstractDataset[Candidate, Candidate]):
    """`path`: the candidate folder; `tracking_uri`/`experiment`/`artifact_location`: where MLflow logs it."""

    def __init__(
        self,
        path: str,
        tracking_uri: str,
        experiment: str,
        artifact_location: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._path = Path(path)
        self._tracking_uri = tracking_uri
        self._experiment = experiment
        self._artifact_location = artifact_location
        self.metadata = metadata

    def save(self, candidate: Candidate) -> None:
        if candidate.global_rank != 0:
            log.info("rank %d: the candidate is written by rank 0 only", candidate.global_rank)
            return
        with atomic_folder(self._path) as folder:
            candidate.scorer.save(folder / SCORER_FOLDER)
            size = folder_bytes(folder / SCORER_FOLDER)
            saved = replace(candidate, metrics={**candidate.metrics, "model_bytes": size},
                            tags={**candidate.tags, "git_commit": git_commit()})  # fmt: skip
            candidate.run = self._log_run(saved, folder / SCORER_FOLDER)
            record = {"run": candidate.run, "metrics": saved.metrics, "tags": saved.tags}
            (folder / CANDIDATE_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        log.info("candidate %s written to %s", candidate.run["model_uri"], self._path)

    def load(self) -> Candidate:
        record = json.loads((self._path / CANDIDATE_FILE).read_text())
        scorer = FraudScorer.load(self._path / SCORER_FOLDER)
        return Candidate(scorer, {}, record["metrics"], [], record["tags"], pd.DataFrame(), run=record["run"])

    def _log_run(self, candidate: Candidate, scorer_folder: Path) -> dict[str, str]:
        return log_model_run(
            scorer_folder,
            self._tracking_uri,
            self._experiment,
            candidate.params,
            candidate.metrics,
            candidate.tags,
            candidate.input_example,
            candidate.history,
            self._artifact_location,
        )

    def _exists(self) -> bool:
        return (self._path / CANDIDATE_FILE).is_file()

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "tracking_uri": self._tracking_uri, "experiment": self._experiment}


def log_model_run(
    scorer_folder: Path,
    tracking_uri: str,
    experiment: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    input_example: pd.DataFrame,
    history: list[dict[str, float]] = (),
    artifact_location: str | None = None,
) -> dict[str, str]:
    """One MLflow run in `experiment` (created if missing): parameters, per-epoch metrics, tags and the pyfunc model
    of the scorer saved in `scorer_folder` (signature and input example). Returns what registering it needs."""
    import mlflow
    from mlflow.entities import Metric
    from mlflow.models import infer_signature

    from fraud_detection.registry.pyfunc import SCORER_ARTIFACT, FraudModel, pip_requirements

    mlflow.set_tracking_uri(_absolute_sqlite(tracking_uri))
    experiment_id = _experiment_id(mlflow, experiment, artifact_location)
    signature = infer_signature(input_example, FraudModel.output_example(len(input_example)))
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params(flatten(params))
        mlflow.set_tags(tags)
        now = int(time.time() * 1000)
        steps = [Metric(name, value, now, int(epoch["epoch"])) for epoch in history
                 for name, value in epoch.items() if name != "epoch"]  # fmt: skip
        mlflow.MlflowClient().log_batch(run.info.run_id, metrics=steps)
        mlflow.log_metrics(metrics)
        model = mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=FraudModel(),
            artifacts={SCORER_ARTIFACT: str(scorer_folder)},
            signature=signature,
            input_example=input_example,
            pip_requirements=pip_requirements(),
        )
    return {"run_id": run.info.run_id, "model_uri": model.model_uri, "model_id": model.model_id,
            "tracking_uri": mlflow.get_tracking_uri(), "experiment": experiment}  # fmt: skip


def _experiment_id(mlflow: Any, name: str, artifact_location: str | None) -> str:
    existing = mlflow.get_experiment_by_name(name)
    if existing is not None:
        return existing.experiment_id
    location = Path(artifact_location).resolve().as_uri() if artifact_location else None
    return mlflow.create_experiment(name, artifact_location=location)


def _absolute_sqlite(uri: str) -> str:
    """`sqlite:///relative/path.db` resolved against the working directory (the project root), folder created."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri.startswith(prefix + "/"):
        return uri
    path = Path(uri.removeprefix(prefix)).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return prefix + str(path)
