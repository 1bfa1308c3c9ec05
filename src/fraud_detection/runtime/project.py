"""The project's configuration: where the project is, how Kedro reads its config (params.yaml at the root is the
only parameters file), and params.yaml + the catalog for the entry points that are not `kedro run` (the operations
CLI, the serving process, the report notebooks), read the same way and checked by the same typed model."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

if TYPE_CHECKING:
    from fraud_detection.runtime.params import Params


class NotInProject(ValueError):
    pass


HOME_ENV = "FRAUD_DETECTION_HOME"  # the project root, for processes that run elsewhere (a Bento runs in its own copy)


def feast_redis(url: str) -> str:
    """A Redis URL (`redis://[:password@]host:port/db`, `rediss://` for TLS) as Feast's Redis online store writes
    its connection string (`host:port,db=N[,password=...][,ssl=true]`), so that one variable sets both."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError(f"Redis URL {url!r}: expected redis://[:password@]host[:port][/db] (or rediss:// for TLS)")
    db = parts.path.strip("/") or "0"
    if not db.isdigit():
        raise ValueError(f"Redis URL {url!r}: database {db!r} is not a number")
    options = [f"{parts.hostname}:{parts.port or 6379}", f"db={db}"]
    options += [f"password={parts.password}"] if parts.password else []
    options += ["ssl=true"] if parts.scheme == "rediss" else []
    return ",".join(options)


CONFIG_LOADER_ARGS: dict[str, Any] = {
    "base_env": "base",
    "default_run_env": "local",
    # Parameters come from params.yaml (shared with DVC), never from a copy under conf/.
    "config_patterns": {"parameters": ["../../params.yaml"]},
    # Endpoints come from the environment, with local defaults: `${oc.env:NAME,default}` (conf/production)
    "custom_resolvers": {"oc.env": oc.env, "feast_redis": feast_redis},
}


class ProjectConfigLoader(OmegaConfigLoader):
    """Kedro's OmegaConfigLoader, hiding only what is hidden inside the project.

    Kedro skips config files whose path has a part starting with "."; for a file outside `conf/` (params.yaml) it
    checks the whole absolute path, so a clone under `~/.cache/...` would load no parameters at all. Here only the
    part of the path below the project root counts. (Overrides `_is_hidden`, verified on kedro 1.7: see
    tests/runtime/test_project.py, which clones the project under a dot-folder.)
    """

    def _is_hidden(self, path_str: str) -> bool:
        root = Path(self.conf_source).resolve().parent
        path = Path(path_str).resolve()
        inside = path.relative_to(root) if path.is_relative_to(root) else path
        return any(part.startswith(".") for part in inside.parts)


def project_root() -> Path:
    """`$FRAUD_DETECTION_HOME` if set, else the working directory or the nearest parent holding the project."""
    if os.environ.get(HOME_ENV):
        home = Path(os.environ[HOME_ENV])
        if not ((home / "pyproject.toml").is_file() and (home / "conf" / "base").is_dir()):
            raise NotInProject(f"{HOME_ENV}={home} holds no project; expected its pyproject.toml and conf/base")
        return home.resolve()
    for folder in (Path.cwd(), *Path.cwd().parents):
        if (folder / "pyproject.toml").is_file() and (folder / "conf" / "base").is_dir():
            return folder
    raise NotInProject(f"{Path.cwd()} is not inside the project; expected to run from the project root")


def config_loader(root: Path, env: str | None = None) -> ProjectConfigLoader:
    return ProjectConfigLoader(str(root / "conf"), env=env, **CONFIG_LOADER_ARGS)


def project_params(env: str | None = None, root: Path | None = None) -> Params:
    """params.yaml as Kedro reads it, checked (no catalog, no change of directory)."""
    from fraud_detection.runtime.params import checked_params

    return checked_params(config_loader(root or project_root(), env)["parameters"])


def project_context(env: str | None = None) -> SimpleNamespace:
    """`params` (params.yaml, checked) and `catalog` (conf/base, overlaid by conf/<env>); the working directory
    becomes the project root, since the catalog's paths are relative to it. Without a Kedro session: Kedro would
    import every pipeline (feast and Lightning included) to check parameter types, seconds before the first
    command."""
    from kedro.io import DataCatalog

    from fraud_detection.runtime.params import checked_params

    root = project_root()
    os.chdir(root)
    loader = config_loader(root, env)
    return SimpleNamespace(
        params=checked_params(loader["parameters"]), catalog=DataCatalog.from_config(loader["catalog"])
    )
