"""Catalogs built by hand for running a pipeline slice through a Kedro runner: the `params:` entries hold the typed
values, as the project's catalog (runtime/kedro_project.py) hands them to nodes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kedro.io import MemoryDataset

from fraud_detection.runtime.kedro_project import PREFIX, typed_entries

if TYPE_CHECKING:
    from kedro.pipeline import Pipeline

    from fraud_detection.runtime.params import Params


def param_entries(pipeline: Pipeline, params: Params) -> dict[str, MemoryDataset]:
    """Every `params:<dotted key>` input of `pipeline`, holding its typed value from `params`."""
    entries = typed_entries(params)
    return {
        name: MemoryDataset(entries[name.removeprefix(PREFIX)], copy_mode="assign")
        for name in sorted(pipeline.inputs())
        if name.startswith(PREFIX)
    }
