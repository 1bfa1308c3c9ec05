"""The report notebooks and their runner: the sources in git are stripped and parameterised by params.yaml; the
runner writes the executed notebook and its HTML only when every cell ran. The real notebooks run on real data in
tests/test_dvc_repro.py (their DVC stages, after every other stage)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml

from fraud_detection.cli import main
from fraud_detection.reporting.notebooks import OUTPUT_DIR, PARAMETERS_TAG, notebook_parameters
from tests.conftest import PROJECT_ROOT

NOTEBOOKS = sorted((PROJECT_ROOT / "notebooks").glob("*.ipynb"))
RUNNER_PARAMETERS = {"project_root"}  # the notebook's own: where the project is (the stage runs from there)


# -- the sources in git
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_source_has_one_parameters_cell_and_no_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    tagged = [cell for cell in notebook.cells if PARAMETERS_TAG in cell.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code", f"{path.name}: one code cell tagged parameters"
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} cell {index} has outputs: strip them before committing"
            assert cell.execution_count is None, f"{path.name} cell {index} has an execution count"
    assert "papermill" not in notebook.metadata, f"{path.name} is an executed notebook, not a source"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_parameters_are_the_params_yaml_keys(path: Path, params: dict) -> None:
    declared = set(notebook_parameters(path)) - RUNNER_PARAMETERS
    assert path.stem in params["notebooks"], f"params.yaml needs notebooks.{path.stem}"
    assert declared == set(params["notebooks"][path.stem] or {}), "params.yaml sets what the notebook declares"


def test_there_are_the_three_reports() -> None:
    assert [p.stem for p in NOTEBOOKS] == ["data_overview", "model_evaluation", "monitoring_review"]


# -- the runner, on a throwaway project
TINY = [
    ("markdown", "# A tiny report"),
    ("parameters", 'message = "hello"\nfail = False\nsleep_s = 0.0'),
    ("code", 'import time\n\ntime.sleep(sleep_s)\nprint(f"message is {message}")'),
    ("code", 'if fail:\n    raise ValueError(f"boom: {message}")\nprint("done")'),
]


def _tiny_project(root: Path, **tiny_params: object) -> Path:
    (root / "conf" / "base").mkdir(parents=True, exist_ok=True)
    (root / "conf" / "local").mkdir(exist_ok=True)
    (root / "notebooks").mkdir(exist_ok=True)
    (root / "pyproject.toml").write_text('[project]\nname = "tiny"\n')
    _set_tiny_params(root, **tiny_params)
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                 "display_name": "Python 3"}})  # fmt: skip
    for kind, source in TINY:
        cell = nbformat.v4.new_markdown_cell(source) if kind == "markdown" else nbformat.v4.new_code_cell(source)
        if kind == "parameters":
            cell.metadata["tags"] = [PARAMETERS_TAG]
        notebook.cells.append(cell)
    nbformat.write(notebook, root / "notebooks" / "tiny.ipynb")
    return root


def _set_tiny_params(root: Path, cell_timeout_s: float = 60, **tiny: object) -> None:
    params = {"notebooks": {"cell_timeout_s": cell_timeout_s, "tiny": tiny}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def _run(root: Path, monkeypatch: pytest.MonkeyPatch, name: str = "tiny") -> int:
    monkeypatch.chdir(root)
    return main(["notebook", name])


def _outputs(root: Path) -> dict[str, bytes]:
    """Every file in reports/notebooks/ (temporary ones included): name -> bytes."""
    return {p.name: p.read_bytes() for p in sorted((root / OUTPUT_DIR).iterdir()) if p.is_file()}


def test_the_runner_writes_the_executed_notebook_and_its_html(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    root = _tiny_project(tmp_path, message="from params.yaml")
    assert _run(root, monkeypatch) == 0, capsys.readouterr().err
    outputs = _outputs(root)
    assert set(outputs) == {"tiny.ipynb", "tiny.html"}, "both outputs, no temporary file left"
    executed = nbformat.reads(outputs["tiny.ipynb"].decode(), as_version=4)
    printed = "".join(o.get("text", "") for cell in executed.cells for o in cell.get("outputs", []))
    assert "message is from params.yaml" in printed and "done" in printed, "params.yaml over the defaults"
    assert executed.metadata["papermill"]["parameters"] == {"message": "from params.yaml"}
    page = outputs["tiny.html"].decode()
    assert "message is from params.yaml" in page and "A tiny report" in page
    assert "<script src=" not in page, "the page loads nothing from the network"
    assert "tiny.html" in capsys.readouterr().out


def test_a_failing_cell_fails_the_command_names_the_error_and_keeps_the_previous_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    root = _tiny_project(tmp_path, message="first")
    assert _run(root, monkeypatch) == 0
    before = _outputs(root)
    capsys.readouterr()

    _set_tiny_params(root, message="second", fail=True)
    assert _run(root, monkeypatch) == 1
    error = capsys.readouterr().err
    assert "notebook tiny failed" in error and "ValueError: boom: second" in error, error
    after = _outputs(root)
    failed = after.pop("tiny.failed.ipynb")
    assert after == before, "the previous outputs are untouched, and nothing else is left behind"
    assert "boom: second" in failed.decode(), "the failed run is kept for inspection"

    _set_tiny_params(root, message="third")  # a later success replaces the outputs and drops the failure
    assert _run(root, monkeypatch) == 0
    assert set(_outputs(root)) == {"tiny.ipynb", "tiny.html"}


def test_a_cell_past_the_timeout_fails_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    root = _tiny_project(tmp_path, sleep_s=30.0, cell_timeout_s=1)
    assert _run(root, monkeypatch) == 1
    assert "timed out" in capsys.readouterr().err
    assert not (root / OUTPUT_DIR / "tiny.ipynb").exists()


@pytest.mark.parametrize(
    ("name", "tiny", "expected"),
    [
        ("missing", {}, "expected one of ['tiny']"),
        ("tiny", {"colour": "blue"}, "notebooks.tiny has ['colour'], which"),
    ],
)
def test_bad_input_is_named_and_runs_nothing(
    name: str, tiny: dict, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = _tiny_project(tmp_path, **tiny)
    assert _run(root, monkeypatch, name) == 2
    assert expected in capsys.readouterr().err
    assert not (root / OUTPUT_DIR).exists() or not any((root / OUTPUT_DIR).iterdir())


def test_a_bad_timeout_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    root = _tiny_project(tmp_path, cell_timeout_s=0)
    assert _run(root, monkeypatch) == 2
    assert "notebooks.cell_timeout_s is 0; expected seconds" in capsys.readouterr().err
