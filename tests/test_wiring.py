"""The one-name rule: every DVC stage runs the Kedro pipeline of its name, with the catalog's paths as its
deps/outs and the params.yaml keys its nodes read. Holds for every stage, present and future."""

from __future__ import annotations

import functools
import re

import pytest
import yaml
from kedro.framework.project import configure_project, pipelines
from kedro.pipeline import Pipeline

from fraud_detection.feature_repo.definitions import SOURCE_PATHS
from tests.conftest import PROJECT_ROOT

CODE_PREFIX = "src/"
FEATURE_STORE = "fraud_detection.feature_store.FeatureStoreDataset"


@functools.cache
def _stages() -> dict[str, dict]:
    return yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"]


@functools.cache
def _pipelines() -> dict[str, Pipeline]:
    configure_project("fraud_detection")
    return {name: p for name, p in pipelines.items() if name != "__default__"}


def _paths(entries: list) -> set[str]:
    """DVC deps/outs entries (plain strings or one-key mappings with options) as paths."""
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries or []}


def _file_paths(catalog: dict, names: set[str], as_input: bool = False) -> set[str]:
    """The files behind catalog datasets. The feature store is files too: registry and online store when a
    stage writes it; registry and Feast's offline sources when a stage reads it."""
    paths: set[str] = set()
    for entry in (catalog[n] for n in names if n in catalog and not n.startswith("_")):
        if entry["type"] == FEATURE_STORE:
            online = {entry["online_store"]["path"]} if entry["online_store"]["type"] == "sqlite" else set()
            paths |= {entry["registry"], *(SOURCE_PATHS.values() if as_input else online)}
        elif entry.get("filepath") or entry.get("path"):  # not a service (the model registry)
            paths.add(entry.get("filepath") or entry["path"])
    return paths


def _top_level_params(pipeline: Pipeline) -> set[str]:
    keys = (re.match(r"params:([^.]+)", i) for n in pipeline.nodes for i in n.inputs)
    return {m.group(1) for m in keys if m}


def test_every_stage_runs_the_pipeline_of_its_name() -> None:
    stages, registered = _stages(), _pipelines()
    assert set(stages) == set(registered), "each DVC stage needs a pipeline of its name, and vice versa"
    for name, stage in stages.items():
        assert stage["cmd"] == f"kedro run --pipelines {name}", name


@pytest.mark.parametrize("name", sorted(_stages()))
def test_stage_deps_and_outs_are_the_catalog_paths_of_its_pipeline(name: str, config_loader) -> None:
    stage, pipeline, catalog = _stages()[name], _pipelines()[name], config_loader["catalog"]
    data_deps = {p for p in _paths(stage.get("deps")) if not p.startswith(CODE_PREFIX)}
    outs = _paths(stage.get("outs")) | _paths(stage.get("metrics")) | _paths(stage.get("plots"))
    assert data_deps == _file_paths(catalog, pipeline.inputs(), as_input=True)
    assert outs == _file_paths(catalog, pipeline.all_outputs())
    assert f"src/fraud_detection/pipelines/{name}" in _paths(stage.get("deps")), "the stage depends on its code"


@pytest.mark.parametrize("name", sorted(_stages()))
def test_stage_params_cover_what_its_nodes_read(name: str, params: dict) -> None:
    stage_params = set(_stages()[name].get("params") or [])
    read = _top_level_params(_pipelines()[name])
    assert name in params, f"params.yaml needs a top-level `{name}` key"
    assert name in stage_params
    assert read <= stage_params, f"stage {name} reads params {read - stage_params} that DVC does not track"


def test_every_file_dataset_belongs_to_a_stage(config_loader) -> None:
    """No path in the catalog is written outside DVC's view."""
    catalog, stages = config_loader["catalog"], _stages()
    produced = set().union(*(_paths(s.get("outs")) | _paths(s.get("metrics")) for s in stages.values()))
    assert _file_paths(catalog, set(catalog)) <= produced


def test_feast_sources_are_the_catalog_datasets_of_the_same_name(config_loader) -> None:
    catalog = config_loader["catalog"]
    assert {name: catalog[name]["filepath"] for name in SOURCE_PATHS} == SOURCE_PATHS
