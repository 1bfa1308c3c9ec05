"""Packaging for serving: a registry alias imported into BentoML's model store.

`bentoml.mlflow.import_model` copies the MLflow model behind `models:/fraud-detector@champion` into the store as
`fraud-detector:v<version>-<run id prefix>`, labelled with the registry version, so a Bento built from it says
exactly which version it carries. The run id keeps tags apart when two registries (two checkouts, a test) share one
BentoML store: version 1 of one is not version 1 of the other. Importing the same version again returns the stored
model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fraud_detection.registry.registry import ALIASES, ModelRegistry, RegistryError

if TYPE_CHECKING:
    import bentoml

LINEAGE_LABELS = ("git_commit", "training_set_md5", "params_hash", "feature_service", "feature_service_version")


def bento_tag(name: str, version: int, run_id: str) -> str:
    return f"{name}:v{version}-{run_id[:12]}"


def import_alias(registry: ModelRegistry, alias: str) -> bentoml.Model:
    """The version `alias` points to, in BentoML's model store (labels: registry model, version, alias, lineage)."""
    import bentoml
    from bentoml.exceptions import NotFound

    if alias not in ALIASES:
        raise RegistryError(f"alias {alias!r} is not managed here; expected one of {list(ALIASES)}")
    number = registry.alias_version(alias)
    if number is None:
        raise RegistryError(f"model {registry.name!r} has no {alias}; expected the register stage to have set it")
    version = registry.version(number)
    tag = bento_tag(registry.name, number, version.run_id or "norun")
    try:
        return bentoml.models.get(tag)
    except NotFound:
        pass
    labels = {
        "registry_model": registry.name,
        "registry_version": str(number),
        "registry_alias": alias,  # at import time; the registry's aliases move on
        "mlflow_run_id": version.run_id or "",
        **{key: version.tags.get(key, "") for key in LINEAGE_LABELS},
    }
    model = bentoml.mlflow.import_model(
        tag,
        model_uri=f"models:/{registry.name}@{alias}",
        labels=labels,
        metadata={"tracking_uri": registry.tracking_uri, "model_uri": f"models:/{registry.name}/{number}"},
    )
    if registry.alias_version(alias) != number:  # the alias moved while we copied: what we hold may be another one
        bentoml.models.delete(tag)
        raise RegistryError(f"{alias} moved away from version {number} during the import; expected it to stay: retry")
    return bentoml.models.get(model.tag)  # as stored (`model` still names its temporary build folder)
