"""The report notebooks: `notebooks/NAME.ipynb` executed by papermill into `reports/notebooks/NAME.ipynb`, rendered
to `reports/notebooks/NAME.html` (`fraud-detection notebook NAME`, the DVC stage `notebook_NAME`).

The notebook runs in a fresh `python3` kernel (this environment's interpreter) with the project root as its working
directory; params.yaml `notebooks.NAME` is injected over the defaults of its cell tagged `parameters`. The executed
notebook and its HTML replace the previous ones only when every cell ran: a cell that raises (or runs past
`notebooks.cell_timeout_s`) fails the run with that cell's error, leaves the previous outputs as they were, and keeps
what ran as `reports/notebooks/NAME.failed.ipynb` for inspection.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraud_detection.datasets.atomic import atomic_file
from fraud_detection.runtime.progress import show_progress
from fraud_detection.runtime.telemetry import disable_telemetry

if TYPE_CHECKING:
    from fraud_detection.reporting.params import NotebooksParams

log = logging.getLogger(__name__)

SOURCE_DIR = Path("notebooks")
OUTPUT_DIR = Path("reports/notebooks")
KERNEL = "python3"  # jupyter_client starts a kernel spec whose argv is `python` with this process's interpreter
PARAMETERS_TAG = "parameters"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
# nbconvert's lab template links MathJax, require.js and mermaid from CDNs; our reports use none of them, so the
# HTML loads nothing from the network when it is opened.
OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


# Kedro's logging in the kernel: plain records on stderr. Its default (rich) would take over the kernel's tracebacks
# and text display, and papermill would no longer see which error a cell raised.
KERNEL_LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler", "level": "WARNING", "stream": "ext://sys.stderr"}},
    "loggers": {"kedro": {"level": "WARNING"}},
    "root": {"handlers": ["console"]},
}


class NotebookError(ValueError):
    """Bad input: no such notebook, a parameter it does not declare, a bad setting."""


class NotebookFailed(RuntimeError):
    """A cell of the notebook raised (or timed out, or the kernel died)."""


@dataclass(frozen=True)
class NotebookRun:
    name: str
    executed: Path
    html: Path
    seconds: float


def available(root: Path) -> list[str]:
    """The notebooks of the project: `notebooks/*.ipynb`, by name."""
    return sorted(path.stem for path in (root / SOURCE_DIR).glob("*.ipynb"))


def notebook_parameters(path: Path) -> dict[str, Any]:
    """The defaults of the notebook's `parameters` cell, name -> value (exactly one such cell is required)."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    tagged = [cell for cell in notebook.cells if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        raise NotebookError(f"{path} has {len(tagged)} cells tagged {PARAMETERS_TAG!r}; expected exactly one")
    try:
        assignments = [node for node in ast.parse(tagged[0].source).body if not isinstance(node, ast.Expr)]
        return {target.id: ast.literal_eval(node.value) for node in assignments for target in node.targets}
    except (SyntaxError, ValueError, AttributeError) as error:
        message = f"{path}: its {PARAMETERS_TAG!r} cell must hold `name = literal` lines only; {error}"
        raise NotebookError(message) from error


def stage_settings(name: str, params: NotebooksParams) -> tuple[dict[str, Any], float]:
    """(`notebooks.NAME`, `notebooks.cell_timeout_s`) from params.yaml."""
    declared = [field for field in type(params).model_fields if field != "cell_timeout_s"]
    if name not in declared:
        raise NotebookError(f"params.yaml has no notebooks.{name}; expected one of {declared} (a new notebook needs "
                            "its entry in params.yaml and its model in reporting/params.py)")  # fmt: skip
    return getattr(params, name).model_dump(mode="json"), params.cell_timeout_s


def run_notebook(
    name: str, root: Path, parameters: Mapping[str, Any], cell_timeout_s: float | None = None
) -> NotebookRun:
    """Execute `notebooks/NAME.ipynb` with `parameters` over its defaults; write the executed notebook and its HTML
    (each atomically) to `reports/notebooks/`. Raises NotebookError (bad input) or NotebookFailed (a cell failed)."""
    disable_telemetry()  # the kernel inherits it
    source = root / SOURCE_DIR / f"{name}.ipynb"
    if not source.is_file():
        raise NotebookError(f"no notebook {source}; expected one of {available(root)}")
    declared = notebook_parameters(source)
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise NotebookError(f"params.yaml notebooks.{name} has {unknown}, which {source} does not declare; "
                            f"expected some of {sorted(declared)}")  # fmt: skip
    out = root / OUTPUT_DIR
    executed, html, failed = out / f"{name}.ipynb", out / f"{name}.html", out / f"{name}.failed.ipynb"
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f".{name}-run-", dir=out) as scratch:
        run = Path(scratch) / f"{name}.ipynb"  # papermill saves as it goes: never onto the previous output
        kedro_logging = Path(scratch) / "logging.yml"
        kedro_logging.write_text(json.dumps(KERNEL_LOGGING), encoding="utf-8")  # JSON is YAML
        try:
            with _environment(KEDRO_LOGGING_CONFIG=str(kedro_logging)):
                _execute(source, run, dict(parameters), root, cell_timeout_s)
        except Exception as error:
            if not _is_cell_failure(error):
                raise
            if run.is_file():
                with atomic_file(failed) as tmp:
                    shutil.copyfile(run, tmp)
            raise NotebookFailed(_failure_message(name, error, failed if run.is_file() else None)) from error
        page = to_html(run)
        with atomic_file(executed) as tmp_notebook, atomic_file(html) as tmp_html:
            shutil.copyfile(run, tmp_notebook)
            tmp_html.write_text(page, encoding="utf-8")
    failed.unlink(missing_ok=True)  # this run succeeded: an older failure no longer describes the outputs
    seconds = time.perf_counter() - started
    log.info("notebook %s executed in %.1f s: %s, %s", name, seconds, executed, html)
    return NotebookRun(name, executed, html, seconds)


def to_html(path: Path) -> str:
    """The executed notebook as one self-contained HTML page (figures embedded, nothing loaded from a CDN)."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", embed_images=True,
                            extra_loaders=[DictLoader({"offline.html.j2": OFFLINE_TEMPLATE})])  # fmt: skip
    exporter.template_file = "offline.html.j2"
    page, _ = exporter.from_notebook_node(nbformat.read(path, as_version=4))
    return page


def _execute(source: Path, output: Path, parameters: dict[str, Any], root: Path, timeout: float | None) -> None:
    import papermill
    from traitlets.config import Config

    # the kernel talks to us over localhost TCP: with CurveZMQ keys (the kernel spec declares support) it is encrypted
    config = Config({"KernelManager": {"transport_encryption": "auto"}})
    papermill.execute_notebook(
        str(source),
        str(output),
        parameters=parameters,
        kernel_name=KERNEL,
        language="python",
        cwd=str(root),
        log_output=False,
        progress_bar=show_progress(),  # its cells, on a terminal only
        execution_timeout=timeout,
        config=config,
    )


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for what starts inside (the kernel inherits them), then put them back."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _is_cell_failure(error: Exception) -> bool:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    return isinstance(error, PapermillExecutionError | CellTimeoutError | DeadKernelError)


def _failure_message(name: str, error: Exception, failed: Path | None) -> str:
    from papermill.exceptions import PapermillExecutionError

    if isinstance(error, PapermillExecutionError):
        where = f"cell {error.cell_index} (In [{error.exec_count}])"
        detail = ANSI_ESCAPE.sub("", "\n".join(error.traceback)).strip() or f"{error.ename}: {error.evalue}"
        what = f"{where} raised {error.ename}: {error.evalue}\n{detail}"
    else:
        what = f"{type(error).__name__}: {error}"
    kept = f"what ran is in {failed}" if failed else "nothing ran"
    return f"notebook {name} failed: {what}\nthe previous outputs are unchanged; {kept}"
