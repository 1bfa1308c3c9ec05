"""The import closure behind dvc.yaml's code deps (fraud_detection.runtime.stage_deps), on a tiny synthetic project;
and, on a copy of the real project, `dvc status` seeing an edit deep in each stage's closure (slow)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import yaml

from fraud_detection.cli import main
from fraud_detection.runtime import stage_deps
from fraud_detection.runtime.project import HOME_ENV
from tests.conftest import PROJECT_ROOT

PKG = "src/fraud_detection"
# The synthetic package: a pipeline `demo` (and `spare`) whose nodes import one module inside a function; a
# subpackage whose __init__ imports another module; relative imports; a module only under TYPE_CHECKING; one module
# nobody imports.
SOURCES = {
    f"{PKG}/__init__.py": "",
    f"{PKG}/pipelines/__init__.py": "",
    f"{PKG}/pipelines/demo/__init__.py": "from .pipeline import create_pipeline\n",
    f"{PKG}/pipelines/demo/pipeline.py": (
        "from kedro.pipeline import Pipeline, node\n"
        "from fraud_detection.pipelines.demo.nodes import run\n"
        "def create_pipeline(**kwargs):\n"
        "    return Pipeline([node(run, 'source_rows', 'scored_rows')])\n"
    ),
    f"{PKG}/pipelines/demo/nodes.py": (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from fraud_detection.core.typing_only import Hint\n"
        "def run(rows):\n"
        "    from fraud_detection.core import deep\n"
        "    return deep.score(rows)\n"
    ),
    f"{PKG}/pipelines/spare/__init__.py": "",  # another pipeline: pipelines/ is never wholly demo's
    f"{PKG}/core/__init__.py": "import fraud_detection.helpers.from_init\n",
    f"{PKG}/core/deep.py": "from . import deeper\nfrom .inner.leaf import LEAF\n",
    f"{PKG}/core/deeper.py": "from ..helpers import relative_target\n",
    f"{PKG}/core/typing_only.py": "Hint = int\n",
    f"{PKG}/core/inner/__init__.py": "",
    f"{PKG}/core/inner/leaf.py": "LEAF = 1\n",
    f"{PKG}/helpers/__init__.py": "",
    f"{PKG}/helpers/from_init.py": "",
    f"{PKG}/helpers/relative_target.py": "",
    f"{PKG}/helpers/unused.py": "import fraud_detection.core\n",
    f"{PKG}/store/__init__.py": "",
    f"{PKG}/store/dataset.py": "class RowsDataset: ...\n",
    f"{PKG}/reporting/notebooks.py": "import os\n",  # a namespace package (no __init__.py), as in the project
    "conf/base/catalog.yml": (
        "source_rows: {type: fraud_detection.store.dataset.RowsDataset}\n"
        "scored_rows: {type: pandas.ParquetDataset, filepath: data/scored.parquet}\n"
        "unread: {type: fraud_detection.helpers.unused.Nothing}\n"
    ),
    "pyproject.toml": "",
    "notebooks/look.ipynb": json.dumps(
        {
            "cells": [
                {"cell_type": "markdown", "source": ["import fraud_detection.helpers.unused\n"]},
                {"cell_type": "code", "source": ["%matplotlib inline\n", "from fraud_detection.core import deeper\n"]},
                {"cell_type": "code", "source": ['rows = catalog.load("source_rows")\n']},
            ]
        }
    ),
}
DVC_YAML = """\
# a comment that stays
stages:
  demo:
    cmd: kedro run --pipelines demo
    deps:
      - data/in.parquet  # a data dep, with a comment
      - src/fraud_detection/pipelines/demo
      - data/other:
          hash: md5
    params:
      - demo
    outs:
      - data/scored.parquet

  # the notebook
  notebook_look:
    cmd: fraud-detection notebook look
    deps:
      - notebooks/look.ipynb
      - src/fraud_detection/reporting
    outs:
      - reports/look.html

  other:
    cmd: echo untouched
    deps:
      - src/fraud_detection/helpers
"""
DEMO_CLOSURE = {
    f"{PKG}/__init__.py",
    f"{PKG}/pipelines/__init__.py",
    f"{PKG}/pipelines/demo/__init__.py",
    f"{PKG}/pipelines/demo/pipeline.py",
    f"{PKG}/pipelines/demo/nodes.py",
    f"{PKG}/core/__init__.py",
    f"{PKG}/core/deep.py",
    f"{PKG}/core/deeper.py",
    f"{PKG}/core/typing_only.py",
    f"{PKG}/core/inner/__init__.py",
    f"{PKG}/core/inner/leaf.py",
    f"{PKG}/helpers/__init__.py",
    f"{PKG}/helpers/from_init.py",
    f"{PKG}/helpers/relative_target.py",
    f"{PKG}/store/__init__.py",
    f"{PKG}/store/dataset.py",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name, text in {**SOURCES, "dvc.yaml": DVC_YAML}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def _closure_files(project: Path, roots: set[str]) -> set[str]:
    source = stage_deps.package_source(project)
    return {source.files[m] for m in stage_deps.closure(stage_deps.import_graph(project, source), roots)}


def test_function_level_type_checking_and_relative_imports_are_followed(project: Path) -> None:
    files = _closure_files(project, {"fraud_detection.pipelines.demo.nodes"})
    assert f"{PKG}/core/deep.py" in files  # imported inside run()
    assert f"{PKG}/core/typing_only.py" in files  # under `if TYPE_CHECKING:`
    assert f"{PKG}/core/deeper.py" in files  # `from . import deeper`
    assert f"{PKG}/helpers/relative_target.py" in files  # `from ..helpers import relative_target`
    assert f"{PKG}/core/inner/leaf.py" in files  # `from .inner.leaf import LEAF`
    assert f"{PKG}/helpers/unused.py" not in files


def test_parent_packages_are_included_and_their_imports_followed(project: Path) -> None:
    files = _closure_files(project, {"fraud_detection.core.inner.leaf"})
    assert {f"{PKG}/__init__.py", f"{PKG}/core/__init__.py", f"{PKG}/core/inner/__init__.py"} <= files
    assert f"{PKG}/helpers/from_init.py" in files  # core/__init__.py imports it
    assert f"{PKG}/core/deep.py" not in files  # a sibling, not a parent


def test_absolute_and_relative_names() -> None:
    assert stage_deps.absolute_name("x", 1, "fraud_detection.a.b", is_package=False) == "fraud_detection.a.x"
    assert stage_deps.absolute_name("x", 1, "fraud_detection.a", is_package=True) == "fraud_detection.a.x"
    assert stage_deps.absolute_name(None, 2, "fraud_detection.a.b", is_package=False) == "fraud_detection"
    assert stage_deps.absolute_name("x", 3, "fraud_detection.a", is_package=False) is None


def test_stage_closures_take_their_roots_from_the_pipeline_catalog_and_notebook(project: Path) -> None:
    needed = stage_deps.stage_deps(project)
    assert set(needed) == {"demo", "notebook_look"}, "a stage running neither a pipeline nor a notebook is left alone"
    assert needed["demo"].files == DEMO_CLOSURE  # store/dataset.py: the type of source_rows, which demo reads
    assert f"{PKG}/helpers/unused.py" not in needed["notebook_look"].files  # a markdown cell imports nothing
    assert {f"{PKG}/reporting/notebooks.py", f"{PKG}/core/deeper.py", f"{PKG}/store/dataset.py"} <= needed[
        "notebook_look"
    ].files


def test_a_directory_stands_for_its_files_only_when_all_are_covered(project: Path) -> None:
    deps = stage_deps.stage_deps(project)["demo"].deps
    assert f"{PKG}/core" in deps and not any(d.startswith(f"{PKG}/core/") for d in deps)  # core/ wholly, inner/ too
    assert f"{PKG}/helpers" not in deps  # unused.py is not imported
    assert {f"{PKG}/helpers/__init__.py", f"{PKG}/helpers/from_init.py"} <= set(deps)
    assert f"{PKG}/pipelines/demo" in deps and f"{PKG}/pipelines" not in deps
    assert list(deps) == sorted(deps)
    files = {f"{PKG}/core/deep.py"}
    assert stage_deps.covering_deps(project, files, PurePosixPath(PKG)) == [f"{PKG}/core/deep.py"]


def test_covered_counts_a_directory_dep_for_the_files_under_it() -> None:
    assert stage_deps.covered("src/a/b.py", ["src/a"])
    assert stage_deps.covered("src/a/b.py", ["src/a/b.py"])
    assert not stage_deps.covered("src/ab/c.py", ["src/a"])


def test_write_replaces_only_the_code_deps_and_check_then_passes(project: Path) -> None:
    assert not stage_deps.check_code_deps(project)[0]
    assert stage_deps.write_code_deps(project)
    text = (project / "dvc.yaml").read_text()
    assert stage_deps.check_code_deps(project)[0] and not stage_deps.write_code_deps(project)
    assert text.startswith("# a comment that stays\n") and "  # the notebook\n" in text
    assert "      - data/in.parquet  # a data dep, with a comment\n      - data/other:\n          hash: md5\n" in text
    stages = yaml.safe_load(text)["stages"]
    demo = stage_deps.dep_paths(stages["demo"]["deps"])
    assert demo == ["data/in.parquet", "data/other", *stage_deps.stage_deps(project)["demo"].deps]
    assert stages["demo"]["deps"][1] == {"data/other": {"hash": "md5"}}
    assert stage_deps.dep_paths(stages["notebook_look"]["deps"])[0] == "notebooks/look.ipynb"
    assert stages["other"]["deps"] == ["src/fraud_detection/helpers"]
    before, after = DVC_YAML.split("\n  # the notebook")[1], text.split("\n  # the notebook")[1]
    assert before.split("  other:")[1] == after.split("  other:")[1]


def test_the_command_checks_and_writes(project: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    (project / "conf" / "base").mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv(HOME_ENV, str(project))
    with pytest.raises(SystemExit) as stale:
        main(["dev", "dvc-deps", "--check"])
    assert stale.value.code == 1
    report = capsys.readouterr().out
    assert "demo:\n  missing src/fraud_detection/__init__.py" in report
    assert "  extra   src/fraud_detection/reporting" not in report  # the notebook's runner: needed
    assert main(["dev", "dvc-deps", "--write"]) == 0
    assert main(["dev", "dvc-deps", "--check"]) == 0
    assert "are their import closures" in capsys.readouterr().out
    assert main(["dev", "dvc-deps"]) == 0
    assert f"demo:\n  {PKG}/__init__.py\n" in capsys.readouterr().out


# -- the real project: an edit deep in a stage's closure is a changed dep for `dvc status`
PROJECT_FILES = ["dvc.yaml", "params.yaml", "pyproject.toml", ".dvcignore", "conf", "src", "notebooks"]


def _run(project: Path, *command: str) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stdout}{done.stderr}"
    return done.stdout


def _deepest(project: Path, stage: str) -> str:
    """The file reached through the most imports in `stage`'s closure, outside the stage's pipeline package."""
    source = stage_deps.package_source(project)
    roots = stage_deps.stage_roots(project, source, [stage])[stage]
    reached = stage_deps.closure(stage_deps.import_graph(project, source), roots)

    def depth(module: str) -> int:
        return 0 if reached[module] is None else 1 + depth(reached[module])

    outside = [m for m in reached if not m.startswith(f"fraud_detection.pipelines.{stage}")]
    return source.files[max(sorted(outside), key=depth)]


@pytest.mark.slow
def test_dvc_status_sees_an_edit_deep_in_each_stage_closure(tmp_path: Path) -> None:
    """Stand-in outputs, `dvc commit` (nothing runs), then an edit per stage of its deepest module: each stage's
    changed deps name a dep covering that module."""
    project = tmp_path / "project"
    for name in PROJECT_FILES:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, project / name, ignore=shutil.ignore_patterns("__pycache__", "local"))
        else:
            project.mkdir(exist_ok=True)
            shutil.copy2(source, project / name)
    stages = stage_deps.dvc_stages(project)
    # data deps too: the live folders (prediction log, labels, traffic days) are no stage's output
    data = [dep for stage in stages.values() for dep in stage_deps.dep_paths(stage.get("deps", []))]
    live = [dep for dep in data if dep.startswith("data/")]
    for stage in stages.values():
        for out in stage_deps.dep_paths([*stage.get("outs", []), *stage.get("metrics", []), *live]):
            path = project / stage_deps.with_vars(project, out)
            if path.suffix:  # a file; else a folder (partitions, plots, the candidate)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("{}")
            else:
                path.mkdir(parents=True, exist_ok=True)
                (path / "part").write_text("stand-in")
    _run(project, "git", "init", "-q")
    _run(project, sys.executable, "-m", "dvc", "init", "-q")
    _run(project, sys.executable, "-m", "dvc", "commit", "-f", "-q")
    assert json.loads(_run(project, sys.executable, "-m", "dvc", "status", "--json")) == {}

    edited = {stage: _deepest(project, stage) for stage in stage_deps.stage_deps(project)}
    for path in set(edited.values()):
        with (project / path).open("a") as file:
            file.write("\n# a deliberate edit\n")
    status = json.loads(_run(project, sys.executable, "-m", "dvc", "status", "--json"))
    for stage, path in edited.items():
        changed = {dep for entry in status.get(stage, []) if isinstance(entry, dict)
                   for dep in entry.get("changed deps", {})}  # fmt: skip
        assert stage_deps.covered(path, changed), f"stage {stage}: editing {path} left it up to date ({changed})"
