"""What the project adds to Kedro: params.yaml checked once by the typed model, before a pipeline is even imported,
and the nodes' `params:` inputs handed over as the typed values (for `params:train`, the `TrainParams`; for
`params:features.label_delay_days`, the int), shared rather than copied per node (the models are frozen).

Kedro's own check of parameters against node type hints is not used: it imports every pipeline of the run to read
them, and once it has made `features` a model, Kedro no longer offers `params:features.label_delay_days`.
"""

from __future__ import annotations

from typing import Any

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import AbstractDataset, DataCatalog, MemoryDataset

from fraud_detection.runtime.params import Params, checked_params

PARAMETERS, PREFIX = "parameters", "params:"


class ProjectHooks:
    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        """Fails the run, naming every bad key, before the catalog is built or a pipeline imported."""
        checked_params(context.config_loader["parameters"])


class ProjectContext(KedroContext):
    @property
    def catalog(self) -> ProjectCatalog:
        """The catalog with typed parameters, as `kedro run` builds it (Kedro's default here is a plain one)."""
        return self._get_catalog(catalog_class=ProjectCatalog)

    @property
    def params(self) -> dict[str, Any]:
        """params.yaml with the run's `--params` overrides, checked (the catalog types each `params:` entry)."""
        raw = self.config_loader["parameters"]
        checked_params(raw)
        return raw


class ProjectCatalog(DataCatalog):
    """Kedro's DataCatalog, where `parameters` and every `params:<dotted key>` Kedro adds hold the typed values."""

    def __setitem__(self, key: str, value: Any) -> None:
        if key == PARAMETERS and not isinstance(value, AbstractDataset):
            self._typed_params = value = checked_params(value)
        elif key.startswith(PREFIX) and not isinstance(value, AbstractDataset) and hasattr(self, "_typed_params"):
            value = typed_value(self._typed_params, key.removeprefix(PREFIX))
        if key == PARAMETERS or key.startswith(PREFIX):
            value = value if isinstance(value, AbstractDataset) else MemoryDataset(value, copy_mode="assign")
        super().__setitem__(key, value)


def typed_value(params: Params, dotted_key: str) -> Any:
    """The typed value at `train.trainer.devices` (model fields, then mapping keys, which may hold dots themselves:
    `spark.conf.spark.sql.shuffle.partitions`)."""
    value: Any = params
    parts = dotted_key.split(".")
    while parts:
        if isinstance(value, dict):
            key = next(".".join(parts[:n]) for n in range(len(parts), 0, -1) if ".".join(parts[:n]) in value)
            value, parts = value[key], parts[key.count(".") + 1 :]
        else:
            value, parts = getattr(value, parts[0]), parts[1:]
    return value


def typed_entries(params: Params) -> dict[str, Any]:
    """Every dotted key of params.yaml (`train`, `train.trainer`, `train.trainer.devices`, ...) and its typed value:
    the `params:` entries of a catalog built by hand (tests)."""
    entries: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        entries[prefix] = value
        if isinstance(value, dict):
            children = value.items()
        else:
            children = ((name, getattr(value, name)) for name in getattr(type(value), "model_fields", ()))
        for name, item in children:
            walk(f"{prefix}.{name}", item)

    for name in type(params).model_fields:
        walk(name, getattr(params, name))
    return entries
