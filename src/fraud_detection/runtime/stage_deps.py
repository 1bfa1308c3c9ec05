"""The code deps of each DVC stage: the static import closure of what the stage runs (`fraud-detection dev dvc-deps`).

Every `.py` under src/fraud_detection is parsed (never imported); each `import` and `from ... import` counts, at
module level, inside functions and under `if TYPE_CHECKING:` alike, and importing a module counts as importing its
parent packages (their `__init__.py` runs). A stage's roots:

- `kedro run --pipelines NAME` (stage NAME): every module of `fraud_detection.pipelines.NAME`, and the modules
  defining the `fraud_detection` dataset types of the catalog entries it reads or writes (conf/base and
  conf/production; an entry counts when its name is a string literal of the pipeline's package).
- `fraud-detection notebook NAME` (stage notebook_NAME): the runner (`fraud_detection.reporting.notebooks`), the
  `fraud_detection` modules the notebook's code cells import, and the dataset types of the catalog entries its
  cells `catalog.load(...)`.

A stage's deps are the closure's files, a directory standing for its files when every `.py` under it is in the
closure. `write_code_deps` puts them in dvc.yaml in place of the stage's `src/` deps (the rest of the file as it
was); `check_code_deps` says what dvc.yaml misses or has in excess.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

PACKAGE = "fraud_detection"
SOURCE_ROOT = PurePosixPath("src")
CODE_PREFIX = "src/"
DVC_FILE = "dvc.yaml"
CATALOGS = ("conf/base/catalog.yml", "conf/production/catalog.yml")
PIPELINES_PACKAGE = f"{PACKAGE}.pipelines"
NOTEBOOK_PREFIX = "notebook_"
NOTEBOOK_RUNNER = f"{PACKAGE}.reporting.notebooks"
NOTEBOOKS_DIR = "notebooks"
CACHE_DIR = "__pycache__"
MAGIC = re.compile(r"^\s*[%!]")  # IPython magics and shell escapes: not Python


@dataclass(frozen=True)
class Source:
    """The package's modules: dotted name -> repo-relative file (a package's is its `__init__.py`)."""

    files: Mapping[str, str]

    def resolve(self, name: str) -> str | None:
        """The module `name` names: itself or, for `pkg.Class` or a namespace package, its longest module prefix."""
        parts = name.split(".")
        for end in range(len(parts), 0, -1):
            candidate = ".".join(parts[:end])
            if candidate in self.files:
                return candidate
        return None


@dataclass(frozen=True)
class StageDeps:
    """One stage's closure (repo-relative files) and the deps that cover it (directories where all is covered)."""

    stage: str
    files: frozenset[str]
    deps: tuple[str, ...]


# -- the import graph
def module_name(path: PurePosixPath) -> str:
    """`src/fraud_detection/a/b.py` -> `fraud_detection.a.b`; a package's `__init__.py` -> the package."""
    parts = path.relative_to(SOURCE_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def python_files(root: Path, directory: PurePosixPath) -> list[PurePosixPath]:
    """Every `.py` under `directory` (repo-relative), `__pycache__` excluded, sorted."""
    found = (PurePosixPath(p.relative_to(root).as_posix()) for p in (root / directory).rglob("*.py"))
    return sorted(p for p in found if CACHE_DIR not in p.parts)


def package_source(root: Path) -> Source:
    """The modules under src/fraud_detection."""
    return Source({module_name(path): str(path) for path in python_files(root, SOURCE_ROOT / PACKAGE)})


def absolute_name(module: str | None, level: int, importer: str, is_package: bool) -> str | None:
    """The absolute name of `from <level dots><module> import ...` in `importer`; None above the top package."""
    if level == 0:
        return module
    parts = (importer if is_package else importer.rpartition(".")[0]).split(".")
    if level - 1 >= len(parts):
        return None
    base = ".".join(parts[: len(parts) - level + 1])
    return f"{base}.{module}" if module else base


def imported_names(tree: ast.AST, importer: str = "", is_package: bool = False) -> set[str]:
    """Every dotted name an import statement anywhere in `tree` names; `from x import y` names `x` and `x.y`."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = absolute_name(node.module, node.level, importer, is_package)
            if base is not None:
                names.add(base)
                names |= {f"{base}.{alias.name}" for alias in node.names if alias.name != "*"}
    return names


def parents(module: str) -> list[str]:
    """`a.b.c` -> [`a`, `a.b`]: the packages whose `__init__.py` importing it runs."""
    parts = module.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


def resolved(source: Source, names: Iterable[str]) -> set[str]:
    """The package's modules among `names` (each resolved to its module), with their parent packages."""
    modules = {m for m in (source.resolve(n) for n in names if n.split(".")[0] == PACKAGE) if m}
    return modules | {p for m in modules for p in parents(m) if p in source.files}


def import_graph(root: Path, source: Source) -> dict[str, set[str]]:
    """Module -> the package's modules importing it runs (its imports and their parent packages, its own parents)."""
    graph: dict[str, set[str]] = {}
    for module, path in source.files.items():
        tree = ast.parse((root / path).read_text(), filename=path)
        names = imported_names(tree, module, is_package=path.endswith("/__init__.py"))
        graph[module] = (resolved(source, names) | resolved(source, [module])) - {module}
    return graph


def closure(graph: Mapping[str, set[str]], roots: Iterable[str]) -> dict[str, str | None]:
    """Every module reachable from `roots` -> the module it was first reached from (None for a root), breadth first."""
    reached: dict[str, str | None] = {r: None for r in sorted(roots) if r in graph}
    frontier = list(reached)
    while frontier:
        following: list[str] = []
        for module in frontier:
            for imported in sorted(graph[module] - reached.keys()):
                reached[imported] = module
                following.append(imported)
        frontier = following
    return reached


# -- the roots of a stage
def catalog_types(root: Path) -> dict[str, set[str]]:
    """Catalog entry -> its `type`s (conf/base and conf/production)."""
    types: dict[str, set[str]] = {}
    for catalog in CATALOGS:
        path = root / catalog
        entries = yaml.safe_load(path.read_text()) if path.is_file() else None
        for name, entry in (entries or {}).items():
            if isinstance(entry, dict) and isinstance(entry.get("type"), str):
                types.setdefault(name, set()).add(entry["type"])
    return types


def string_literals(tree: ast.AST) -> set[str]:
    """Every string constant in `tree`."""
    return {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def pipeline_datasets(root: Path, source: Source, name: str, catalog: Iterable[str]) -> set[str]:
    """The catalog entries pipeline `name` reads or writes: those its package's modules spell as a string."""
    prefix = f"{PIPELINES_PACKAGE}.{name}"
    package = (m for m in source.files if m == prefix or m.startswith(f"{prefix}."))
    literals = set().union(*(string_literals(ast.parse((root / source.files[m]).read_text())) for m in package))
    return literals & set(catalog)


def notebook_code(root: Path, name: str) -> ast.Module:
    """The code cells of notebooks/NAME.ipynb as one module (magic and shell lines blanked)."""
    notebook = json.loads((root / NOTEBOOKS_DIR / f"{name}.ipynb").read_text())
    cells = ("".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "code")
    lines = ("" if MAGIC.match(line) else line for cell in cells for line in cell.splitlines())
    return ast.parse("\n".join(lines), filename=f"{NOTEBOOKS_DIR}/{name}.ipynb")


def loaded_datasets(tree: ast.AST) -> set[str]:
    """The names of `<anything>.load("name")` calls: the catalog entries a notebook loads."""
    calls = (n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute))
    return {
        c.args[0].value
        for c in calls
        if c.func.attr == "load" and c.args and isinstance(c.args[0], ast.Constant) and isinstance(c.args[0].value, str)
    }


def dataset_modules(types: Mapping[str, set[str]], datasets: Iterable[str]) -> set[str]:
    """The `fraud_detection` dataset types of `datasets` (dotted class names; resolved to modules later)."""
    return {t for d in datasets for t in types.get(d, ()) if t.split(".")[0] == PACKAGE}


def stage_roots(root: Path, source: Source, stages: Iterable[str]) -> dict[str, set[str]]:
    """Stage -> the modules its command runs first; stages that run neither a pipeline nor a notebook are left out."""
    types, roots = catalog_types(root), {}
    for stage in stages:
        if stage.startswith(NOTEBOOK_PREFIX):
            code = notebook_code(root, stage.removeprefix(NOTEBOOK_PREFIX))
            names = {NOTEBOOK_RUNNER, *imported_names(code), *dataset_modules(types, loaded_datasets(code))}
        elif f"{PIPELINES_PACKAGE}.{stage}" in source.files:
            package = f"{PIPELINES_PACKAGE}.{stage}"
            modules = {m for m in source.files if m == package or m.startswith(f"{package}.")}
            names = modules | dataset_modules(types, pipeline_datasets(root, source, stage, types.keys()))
        else:
            continue
        roots[stage] = resolved(source, names)
    return roots


# -- files to deps
def covering_deps(root: Path, files: set[str], directory: PurePosixPath) -> list[str]:
    """`files` under `directory`, each directory whose `.py` files are all in `files` written instead of them."""
    below = python_files(root, directory)
    if below and all(str(p) in files for p in below):
        return [str(directory)]
    deps: list[str] = []
    for child in sorted((root / directory).iterdir()):
        relative = directory / child.name
        if child.is_dir() and child.name != CACHE_DIR:
            deps += covering_deps(root, files, relative)
        elif child.suffix == ".py" and str(relative) in files:
            deps.append(str(relative))
    return deps


def dvc_stages(root: Path) -> dict[str, dict]:
    """dvc.yaml's stages."""
    return yaml.safe_load((root / DVC_FILE).read_text())["stages"]


def stage_deps(root: Path) -> dict[str, StageDeps]:
    """Every pipeline and notebook stage of dvc.yaml -> the code deps it needs, in dvc.yaml's order."""
    source = package_source(root)
    graph = import_graph(root, source)
    result = {}
    for stage, roots in stage_roots(root, source, dvc_stages(root)).items():
        files = {source.files[m] for m in closure(graph, roots)}
        deps = sorted(covering_deps(root, files, SOURCE_ROOT / PACKAGE))
        result[stage] = StageDeps(stage, frozenset(files), tuple(deps))
    return result


def dep_paths(entries: list | None) -> list[str]:
    """DVC deps entries (strings or one-key mappings with options) as paths."""
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries or []]


def with_vars(root: Path, path: str) -> str:
    """`path` with DVC's `${key.subkey}` templates resolved from params.yaml (DVC's default vars)."""

    def value(match: re.Match) -> str:
        found = yaml.safe_load((root / "params.yaml").read_text())
        for key in match.group(1).split("."):
            found = found[key]
        return str(found)

    return re.sub(r"\$\{([\w.]+)\}", value, path)


def covered(path: str, deps: Iterable[str]) -> bool:
    """Whether one of `deps` is `path` or a directory above it."""
    return any(path == d or path.startswith(f"{d.rstrip('/')}/") for d in deps)


# -- dvc.yaml, edited as text (comments and layout kept)
def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    """A line that is neither blank nor a comment."""
    return bool(line.strip()) and not line.lstrip().startswith("#")


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """The index after the block opened at `start`: up to the last line (blank and comments aside) indented more."""
    end = start + 1
    for index in range(start + 1, len(lines)):
        if _is_content(lines[index]) and _indent(lines[index]) <= indent:
            break
        if _is_content(lines[index]) or (lines[index].strip() and _indent(lines[index]) > indent):
            end = index + 1
    return end


def _item_value(line: str) -> str:
    """`- path` or `- path:` (an entry with options) -> path."""
    value = line.strip().removeprefix("-").split(" #")[0].strip().removesuffix(":").strip()
    return value.strip("'\"")


def _rewrite_deps(lines: list[str], deps_line: int, code: Iterable[str]) -> list[str]:
    """The deps block at `deps_line` with its `src/` entries replaced by `code`, after the other entries."""
    indent = _indent(lines[deps_line])
    if lines[deps_line].split("#")[0].strip() != "deps:":
        raise ValueError(f"{DVC_FILE}:{deps_line + 1}: deps must be a block list (`deps:` then `- path` lines)")
    end = _block_end(lines, deps_line, indent)
    kept: list[str] = []
    item_indent, last_item_end, skipping = indent + 2, None, False
    for line in lines[deps_line + 1 : end]:
        if line.lstrip().startswith("- ") and _is_content(line):
            item_indent = _indent(line)
            skipping = _item_value(line).startswith(CODE_PREFIX)
        elif _is_content(line) and _indent(line) <= item_indent:
            skipping = False
        if skipping and (_is_content(line) or not line.strip()):
            continue
        kept.append(line)
        if _is_content(line) and not skipping:
            last_item_end = len(kept)
    insert_at = last_item_end if last_item_end is not None else 0
    new = [f"{' ' * item_indent}- {path}" for path in code]
    return [*lines[: deps_line + 1], *kept[:insert_at], *new, *kept[insert_at:], *lines[end:]]


def _stage_lines(lines: list[str]) -> dict[str, int]:
    """Stage name -> the index of its line under `stages:`."""
    top = next(i for i, line in enumerate(lines) if line.split("#")[0].rstrip() == "stages:")
    end = _block_end(lines, top, 0)
    body = [i for i in range(top + 1, end) if _is_content(lines[i])]
    stage_indent = min(_indent(lines[i]) for i in body)
    return {lines[i].split(":")[0].strip(): i for i in body if _indent(lines[i]) == stage_indent}


def rewrite_code_deps(text: str, code_deps: Mapping[str, Iterable[str]]) -> str:
    """dvc.yaml's text with the `src/` deps of each stage of `code_deps` replaced by its paths; the rest unchanged."""
    lines = text.splitlines()
    for stage in code_deps:
        start = _stage_lines(lines)[stage]
        end = _block_end(lines, start, _indent(lines[start]))
        keys = [i for i in range(start + 1, end) if _is_content(lines[i])]
        key_indent = min((_indent(lines[i]) for i in keys), default=0)
        deps = [i for i in keys if _indent(lines[i]) == key_indent and lines[i].strip().startswith("deps:")]
        if not deps:
            raise ValueError(f"{DVC_FILE}: stage {stage} has no `deps:`; add one")
        lines = _rewrite_deps(lines, deps[0], code_deps[stage])
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


def written_text(root: Path, needed: Mapping[str, StageDeps] | None = None) -> tuple[str, str]:
    """dvc.yaml's text now, and as `write_code_deps` writes it."""
    needed = stage_deps(root) if needed is None else needed
    text = (root / DVC_FILE).read_text()
    return text, rewrite_code_deps(text, {s: d.deps for s, d in needed.items()})


def write_code_deps(root: Path) -> bool:
    """Write each stage's code deps into dvc.yaml; whether the file changed."""
    text, new = written_text(root)
    if new != text:
        (root / DVC_FILE).write_text(new)
    return new != text


def deps_report(root: Path, needed: Mapping[str, StageDeps] | None = None) -> dict[str, dict[str, list[str]]]:
    """Stage -> `missing` (closure files no dvc.yaml dep covers) and `extra` (dvc.yaml code deps not needed)."""
    needed = stage_deps(root) if needed is None else needed
    stages, report = dvc_stages(root), {}
    for stage, want in needed.items():
        have = dep_paths(stages[stage].get("deps"))
        missing = sorted(f for f in want.files if not covered(f, have))
        extra = [d for d in have if d.startswith(CODE_PREFIX) and d not in want.deps]
        if missing or extra:
            report[stage] = {"missing": missing, "extra": extra}
    return report


def check_code_deps(root: Path) -> tuple[bool, list[str]]:
    """Whether dvc.yaml is what `write_code_deps` would write, and what differs, stage by stage."""
    needed = stage_deps(root)
    text, new = written_text(root, needed)
    if new == text:
        return True, [f"{DVC_FILE}: the code deps of all {len(needed)} stages are their import closures"]
    lines = []
    for stage, problems in deps_report(root, needed).items():
        lines.append(f"{stage}:")
        lines += [f"  missing {path}" for path in problems["missing"]]
        lines += [f"  extra   {path}" for path in problems["extra"]]
    if not lines:
        lines.append(f"{DVC_FILE}: the right code deps, in another order or place")
    lines.append("run `fraud-detection dev dvc-deps --write`")
    return False, lines
