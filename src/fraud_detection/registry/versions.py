"""Model versions: a trained candidate becomes a version of the registered model, once.

Registration is idempotent: a candidate is known by its MLflow run, so registering the same candidate again
returns the version it already has instead of creating a duplicate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

RUN_ID_TAG = "candidate_run_id"


def register_candidate(client: MlflowClient, name: str, run: dict[str, str], tags: dict[str, Any]) -> ModelVersion:
    """The version of `name` for the candidate's run (`run`: candidate.json's run_id, model_uri, model_id),
    created with `tags` (its lineage) unless it exists."""
    existing = find_version(client, name, run["run_id"])
    if existing is not None:
        return existing
    if client.search_registered_models(filter_string=f"name = '{name}'") == []:
        client.create_registered_model(name, description="Card fraud detector (fraud_detection project)")
    all_tags = {**{k: str(v) for k, v in tags.items()}, RUN_ID_TAG: run["run_id"]}
    return client.create_model_version(
        name, source=run["model_uri"], run_id=run["run_id"], tags=all_tags, model_id=run.get("model_id")
    )


def find_version(client: MlflowClient, name: str, run_id: str) -> ModelVersion | None:
    versions = client.search_model_versions(filter_string=f"name = '{name}' and tag.{RUN_ID_TAG} = '{run_id}'")
    return min(versions, key=lambda v: int(v.version)) if versions else None
