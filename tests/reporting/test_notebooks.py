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
from fraud_detection.runtime.params import Params
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
def test_the_parameters_are_the_params_yaml_keys(path: Path, params: Params) -> None:
    declared = set(notebook_parameters(path)) - RUNNER_PARAMETERS
    settings = params.notebooks.model_dump()
    assert path.stem in settings, f"params.yaml needs notebooks.{path.stem} (and reporting/params.py its model)"
    assert declared == set(settings[path.stem]), "params.yaml sets what the notebook declares"


def test_there_are_the_three_reports() -> None:
    assert [p.stem for p in NOTEBOOKS] == ["data_overview", "model_evaluation", "monitoring_review"]


# -- the runner, on a throwaway project: the project's params.yaml, and a tiny notebook in place of data_overview
# (params.yaml sets its `amount_bins`; whether it fails or sleeps are the notebook's own defaults)
TINY = "data_overview"
TINY_CELLS = [
    ("markdown", "# A tiny report"),
    ("parameters", "amount_bins = 1\nfail = {fail}\nsleep_s = {sleep_s}"),
    ("code", 'import time\n\ntime.sleep(sleep_s)\nprint(f"amount_bins is {{amount_bins}}")'),
    ("code", 'if fail:\n    raise ValueError(f"boom: {{amount_bins}}")\nprint("done")'),
]


def _tiny_project(root: Path, **notebooks: object) -> Path:
    (root / "conf" / "base").mkdir(parents=True, exist_ok=True)
    (root / "conf" / "local").mkdir(exist_ok=True)
    (root / "pyproject.toml").write_text('[project]\nname = "tiny"\n')
    _set_params(root, **notebooks)
    _write_tiny_notebook(root)
    return root


def _write_tiny_notebook(root: Path, fail: bool = False, sleep_s: float = 0.0, declared: bool = True) -> None:
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                 "display_name": "Python 3"}})  # fmt: skip
    for kind, template in TINY_CELLS:
        source = template.format(fail=fail, sleep_s=sleep_s)
        if kind == "markdown":
            notebook.cells.append(nbformat.v4.new_markdown_cell(source))
            continue
        if kind == "parameters" and not declared:
            source = source.replace("amount_bins = 1", "amount_bins_undeclared = 1")
        cell = nbformat.v4.new_code_cell(source)
        if kind == "parameters":
            cell.metadata["tags"] = [PARAMETERS_TAG]
        notebook.cells.append(cell)
    (root / "notebooks").mkdir(exist_ok=True)
    nbformat.write(notebook, root / "notebooks" / f"{TINY}.ipynb")


def _set_params(root: Path, cell_timeout_s: object = 60, amount_bins: int = 60) -> None:
    """The project's params.yaml with `notebooks.cell_timeout_s` and `notebooks.data_overview.amount_bins` set."""
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["notebooks"] = {**params["notebooks"], "cell_timeout_s": cell_timeout_s,
                           TINY: {"amount_bins": amount_bins}}  # fmt: skip
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def _run(root: Path, monkeypatch: pytest.MonkeyPatch, name: str = TINY) -> int:
    monkeypatch.chdir(root)
    return main(["notebook", name])


def _outputs(root: Path) -> dict[str, bytes]:
    """Every file in reports/notebooks/ (temporary ones included): name -> bytes."""
    return {p.name: p.read_bytes() for p in sorted((root / OUTPUT_DIR).iterdir()) if p.is_file()}


def test_the_runner_writes_the_executed_notebook_and_its_html(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    root = _tiny_project(tmp_path, amount_bins=42)
    assert _run(root, monkeypatch) == 0, capsys.readouterr().err
    outputs = _outputs(root)
    assert set(outputs) == {f"{TINY}.ipynb", f"{TINY}.html"}, "both outputs, no temporary file left"
    executed = nbformat.reads(outputs[f"{TINY}.ipynb"].decode(), as_version=4)
    printed = "".join(o.get("text", "") for cell in executed.cells for o in cell.get("outputs", []))
    assert "amount_bins is 42" in printed and "done" in printed, "params.yaml over the defaults"
    assert executed.metadata["papermill"]["parameters"] == {"amount_bins": 42}
    page = outputs[f"{TINY}.html"].decode()
    assert "amount_bins is 42" in page and "A tiny report" in page
    assert "<script src=" not in page, "the page loads nothing from the network"
    assert f"{TINY}.html" in capsys.readouterr().out


def test_a_failing_cell_fails_the_command_names_the_error_and_keeps_the_previous_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    root = _tiny_project(tmp_path, amount_bins=1)
    assert _run(root, monkeypatch) == 0
    before = _outputs(root)
    capsys.readouterr()

    _set_params(root, amount_bins=2)
    _write_tiny_notebook(root, fail=True)
    assert _run(root, monkeypatch) == 1
    error = capsys.readouterr().err
    assert f"notebook {TINY} failed" in error and "ValueError: boom: 2" in error, error
    after = _outputs(root)
    failed = after.pop(f"{TINY}.failed.ipynb")
    assert after == before, "the previous outputs are untouched, and nothing else is left behind"
    assert "boom: 2" in failed.decode(), "the failed run is kept for inspection"

    _set_params(root, amount_bins=3)  # a later success replaces the outputs and drops the failure
    _write_tiny_notebook(root)
    assert _run(root, monkeypatch) == 0
    assert set(_outputs(root)) == {f"{TINY}.ipynb", f"{TINY}.html"}


def test_a_cell_past_the_timeout_fails_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    root = _tiny_project(tmp_path, cell_timeout_s=1)
    _write_tiny_notebook(root, sleep_s=30.0)
    assert _run(root, monkeypatch) == 1
    assert "timed out" in capsys.readouterr().err
    assert not (root / OUTPUT_DIR / f"{TINY}.ipynb").exists()


@pytest.mark.parametrize(
    ("name", "declare_amount_bins", "expected"),
    [
        ("missing", True, "params.yaml has no notebooks.missing; expected one of ['data_overview', 'model_eval"),
        ("model_evaluation", True, f"notebooks/model_evaluation.ipynb; expected one of [{TINY!r}]"),
        (TINY, False, f"params.yaml notebooks.{TINY} has ['amount_bins'], which"),
    ],
)
def test_bad_input_is_named_and_runs_nothing(
    name: str, declare_amount_bins: bool, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    root = _tiny_project(tmp_path)
    _write_tiny_notebook(root, declared=declare_amount_bins)
    assert _run(root, monkeypatch, name) == 2
    assert expected in capsys.readouterr().err
    assert not (root / OUTPUT_DIR).exists() or not any((root / OUTPUT_DIR).iterdir())


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [(0, "params.yaml notebooks.cell_timeout_s=0: expected a number > 0"),
     ("600", "params.yaml notebooks.cell_timeout_s='600': expected a number > 0")],
)  # fmt: skip
def test_a_bad_timeout_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, timeout, expected) -> None:
    root = _tiny_project(tmp_path, cell_timeout_s=timeout)
    assert _run(root, monkeypatch) == 2
    assert expected in capsys.readouterr().err
    assert not (root / OUTPUT_DIR).exists()
