"""The one-name rule: every DVC stage runs the Kedro pipeline of its name, with the catalog's paths as its
deps/outs and the params.yaml keys its nodes read. Holds for every stage, present and future. The report notebooks
have their own rule: stage `notebook_<name>` runs notebooks/<name>.ipynb with params.yaml `notebooks.<name>`, and
depends on the catalog paths the notebook loads."""

from __future__ import annotations

import functools
import json
import re
import subprocess

import pytest
import yaml
from kedro.framework.project import configure_project, pipelines
from kedro.pipeline import Pipeline

from fraud_detection.feature_store.definitions import SOURCE_PATHS
from fraud_detection.runtime import stage_deps
from fraud_detection.runtime.kedro_project import typed_entries
from fraud_detection.runtime.params import Params
from tests.conftest import PROJECT_ROOT

CODE_PREFIX = "src/"
FEATURE_STORE = "fraud_detection.feature_store.dataset.FeatureStoreDataset"
NOTEBOOK_PREFIX = "notebook_"


@functools.cache
def _stages() -> dict[str, dict]:
    """The Kedro pipelines' stages (every stage but the notebooks')."""
    return {name: s for name, s in _all_stages().items() if not name.startswith(NOTEBOOK_PREFIX)}


@functools.cache
def _notebook_stages() -> dict[str, dict]:
    """Notebook name -> its stage."""
    stages = _all_stages()
    return {name.removeprefix(NOTEBOOK_PREFIX): stages[name] for name in stages if name.startswith(NOTEBOOK_PREFIX)}


@functools.cache
def _all_stages() -> dict[str, dict]:
    return yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["stages"]


@functools.cache
def _pipelines() -> dict[str, Pipeline]:
    configure_project("fraud_detection")
    return {name: p for name, p in pipelines.items() if name != "__default__"}


def _paths(entries: list) -> set[str]:
    """DVC deps/outs entries (plain strings or one-key mappings with options) as paths: `${key}` resolved from
    params.yaml (DVC's vars), a file of a catalog folder of reports (TextFilesDataset) as that folder."""
    paths = {next(iter(e)) if isinstance(e, dict) else e for e in entries or []}
    return {_report_folder(stage_deps.with_vars(PROJECT_ROOT, path)) for path in paths}


def _report_folder(path: str) -> str:
    catalog = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog.yml").read_text())
    folders = {
        e["path"] for e in catalog.values() if isinstance(e, dict) and e.get("type", "").endswith("TextFilesDataset")
    }
    return next((folder for folder in folders if path.startswith(f"{folder}/")), path)


# Written by the commands that run beside the stages: `fraud-detection traffic run`, `online-learner run`
WRITTEN_BY_COMMANDS = {"traffic_transactions", "traffic_state", "online_learner_status"}
# A stage whose params.yaml key is not its name: the online learner's key (`online`, read by the live learner too)
PARAMS_KEY = {"online_learning": "online"}


def _file_paths(catalog: dict, names: set[str], as_input: bool = False) -> set[str]:
    """The files behind catalog datasets. The feature store is files too: its materialization record when a
    stage writes it; the record and Feast's offline sources when a stage reads it (the registry and the online
    store are live state, written by serving too)."""
    paths: set[str] = set()
    for entry in (catalog[n] for n in names if n in catalog and not n.startswith("_")):
        if entry["type"] == FEATURE_STORE:
            paths |= {entry["record"], *(SOURCE_PATHS.values() if as_input else ())}
        elif entry.get("filepath") or entry.get("path"):  # not a service (the model registry)
            paths.add(entry.get("filepath") or entry["path"])
    return paths


def _live_folders(catalog: dict, names: set[str]) -> set[str]:
    """The live folders behind catalog datasets (`folder`: appended by the service or the traffic run, not by a
    stage); a stage that reads one may depend on it."""
    return {catalog[n]["folder"] for n in names if n in catalog and catalog[n].get("folder")}


def _read_params(pipeline: Pipeline) -> set[str]:
    """The dotted params.yaml keys the pipeline's nodes take (`params:train`, `params:features.label_delay_days`)."""
    return {i.removeprefix("params:") for n in pipeline.nodes for i in n.inputs if i.startswith("params:")}


def _covers(tracked: str, key: str) -> bool:
    """DVC tracking `tracked` sees a change of `key` (the same key, or a block holding it)."""
    return key == tracked or key.startswith(f"{tracked}.")


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
    assert data_deps - _live_folders(catalog, pipeline.inputs()) == _file_paths(catalog, pipeline.inputs(), True)
    assert outs == _file_paths(catalog, pipeline.all_outputs())


@pytest.mark.parametrize("name", sorted(_stages()))
def test_stage_params_cover_what_its_nodes_read(name: str, params: Params) -> None:
    stage_params = set(_stages()[name].get("params") or [])
    read, key = _read_params(_pipelines()[name]), PARAMS_KEY.get(name, name)
    assert key in type(params).model_fields, f"params.yaml needs a top-level `{key}` key"
    assert key in stage_params
    untracked = {key for key in read if not any(_covers(tracked, key) for tracked in stage_params)}
    assert not untracked, f"stage {name} reads params {untracked} that DVC does not track"
    entries = typed_entries(params)
    assert all(tracked in entries for tracked in stage_params), f"stage {name} tracks keys params.yaml lacks"


# -- code deps: the import closure of what each stage runs (fraud_detection.runtime.stage_deps)
@functools.cache
def _code_closures() -> dict[str, stage_deps.StageDeps]:
    return stage_deps.stage_deps(PROJECT_ROOT)


@functools.cache
def _import_chains() -> dict[str, dict[str, str | None]]:
    """Stage -> module -> the module it is first reached from (its import chain, for the messages)."""
    source = stage_deps.package_source(PROJECT_ROOT)
    graph = stage_deps.import_graph(PROJECT_ROOT, source)
    roots = stage_deps.stage_roots(PROJECT_ROOT, source, _all_stages())
    return {stage: stage_deps.closure(graph, stage_roots) for stage, stage_roots in roots.items()}


def _chain(stage: str, module: str) -> str:
    reached, chain = _import_chains()[stage], [module]
    while reached[chain[-1]] is not None:
        chain.append(reached[chain[-1]])
    return " <- ".join(chain)


def test_every_stage_has_an_import_closure() -> None:
    """Each stage runs a pipeline or a notebook, so `fraud-detection dev dvc-deps` knows its code."""
    assert set(_code_closures()) == set(_all_stages())


@pytest.mark.parametrize("name", sorted(_all_stages()))
def test_stage_code_deps_cover_its_import_closure(name: str) -> None:
    """Every module the stage's pipeline (or notebook) imports, directly or not, at any level, is a dep or under
    one: an edit to any of them makes `dvc status` report the stage changed."""
    deps = _paths(_all_stages()[name].get("deps"))
    source = stage_deps.package_source(PROJECT_ROOT)
    modules = {path: module for module, path in source.files.items()}
    missing = sorted(f for f in _code_closures()[name].files if not stage_deps.covered(f, deps))
    assert not missing, (
        f"stage {name}: dvc.yaml misses {missing} (imported as "
        + "; ".join(_chain(name, modules[f]) for f in missing)
        + "); run `fraud-detection dev dvc-deps --write`"
    )


@pytest.mark.parametrize("name", sorted(_all_stages()))
def test_a_module_deep_in_the_stage_closure_is_a_dep(name: str) -> None:
    """The module reached through the most imports, outside the stage's pipeline package, is covered."""
    reached = _import_chains()[name]
    outside = sorted(m for m in reached if not m.startswith(f"fraud_detection.pipelines.{name}"))
    deepest = max(outside, key=lambda m: _chain(name, m).count(" <- "))
    assert _chain(name, deepest).count(" <- ") >= 1, f"stage {name}: its closure is its roots only"
    path = stage_deps.package_source(PROJECT_ROOT).files[deepest]
    assert stage_deps.covered(path, _paths(_all_stages()[name].get("deps"))), _chain(name, deepest)


@pytest.mark.parametrize("name", sorted(_stages()))
def test_the_closure_counts_every_dataset_the_pipeline_uses(name: str, config_loader) -> None:
    """The static reading of the pipeline's datasets (string literals of its package) misses none Kedro sees."""
    source, catalog = stage_deps.package_source(PROJECT_ROOT), config_loader["catalog"]
    static = stage_deps.pipeline_datasets(PROJECT_ROOT, source, name, catalog)
    assert _pipelines()[name].datasets() & set(catalog) <= static


def test_every_file_dataset_belongs_to_a_stage(config_loader) -> None:
    """No path in the catalog is written outside DVC's view, but the world's (`fraud-detection traffic run`): its
    days are a source, like a user's files, and its progress is its own."""
    catalog, stages = config_loader["catalog"], _all_stages()
    produced = set().union(*(_paths(s.get("outs")) | _paths(s.get("metrics")) for s in stages.values()))
    assert _file_paths(catalog, set(catalog) - WRITTEN_BY_COMMANDS) <= produced
    ingest_deps = set(stages["ingest"]["deps"])
    assert catalog["traffic_transactions"]["path"] in ingest_deps, "the next repro ingests the traffic days"


def test_feast_sources_are_the_catalog_datasets_of_the_same_name(config_loader) -> None:
    catalog = config_loader["catalog"]
    assert {name: catalog[name]["filepath"] for name in SOURCE_PATHS} == SOURCE_PATHS


# -- the report notebooks
def _notebook_code(name: str) -> str:
    notebook = json.loads((PROJECT_ROOT / "notebooks" / f"{name}.ipynb").read_text())
    return "\n".join("".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code")


def test_every_notebook_has_its_stage() -> None:
    notebooks = {path.stem for path in (PROJECT_ROOT / "notebooks").glob("*.ipynb")}
    assert set(_notebook_stages()) == notebooks, "each notebooks/<name>.ipynb needs a stage notebook_<name>"


@pytest.mark.parametrize("name", sorted(_notebook_stages()))
def test_notebook_stage_runs_its_notebook_with_its_params(name: str, params: Params) -> None:
    stage = _notebook_stages()[name]
    assert stage["cmd"] == f"fraud-detection notebook {name}"
    assert {f"notebooks/{name}.ipynb", "src/fraud_detection/reporting"} <= _paths(stage["deps"])
    assert _paths(stage.get("outs")) == {f"reports/notebooks/{name}.ipynb", f"reports/notebooks/{name}.html"}
    assert name in type(params.notebooks).model_fields, f"params.yaml needs notebooks.{name}"
    assert {f"notebooks.{name}", "notebooks.cell_timeout_s"} <= set(stage.get("params") or [])


@pytest.mark.parametrize("name", sorted(_notebook_stages()))
def test_notebook_stage_depends_on_what_the_notebook_reads(name: str, config_loader) -> None:
    """Its data deps are exactly the catalog paths of the datasets it loads, each made by another stage (so DVC runs
    the notebook after them); its code deps exist; every params.yaml block it reads is (partly) a stage param."""
    stage, code, catalog = _notebook_stages()[name], _notebook_code(name), config_loader["catalog"]
    deps = _paths(stage["deps"])
    data_deps = {p for p in deps if not p.startswith((CODE_PREFIX, "notebooks/"))}
    loaded = set(re.findall(r"catalog\.load\(\"([^\"]+)\"\)", code))
    assert data_deps == _file_paths(catalog, loaded, as_input=True)
    produced = set().union(*(_paths(s.get("outs")) | _paths(s.get("metrics")) for s in _stages().values()))
    assert data_deps <= produced
    assert all((PROJECT_ROOT / p).exists() for p in deps if p.startswith(CODE_PREFIX))
    stage_params = set(stage.get("params") or [])
    for key in set(re.findall(r"(?<![\w.])params\.((?!yaml\b)\w+(?:\.\w+)*)", code)):
        assert any(_covers(p, key) or _covers(key, p) for p in stage_params), f"reads params {key}"


def test_a_fresh_clone_has_the_data_folder() -> None:
    """data/ is part of the fixed top level: its README (the layers) is committed, and the .gitkeep of the live
    folders (a stage's deps); what the stages write is not."""
    tracked = subprocess.run(["git", "ls-files", "data"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                             check=True).stdout.split()  # fmt: skip
    assert [path for path in tracked if not path.endswith("/.gitkeep")] == ["data/README.md"]
    layers = set(re.findall(r"`(\d\d_\w+|mlflow)/`", (PROJECT_ROOT / "data" / "README.md").read_text()))
    catalog_layers = set(re.findall(r"data/(\d\d_\w+|mlflow)/", (PROJECT_ROOT / "conf/base/catalog.yml").read_text()))
    assert catalog_layers <= layers, f"data/README.md should describe {sorted(catalog_layers - layers)}"
