"""The project's configuration outside `kedro run`: params.yaml and the catalog, read the way Kedro reads them, for
the operations CLI and the serving process. Without a Kedro session: it would import every pipeline (feast and
Lightning included) to check parameter types, seconds before the first command."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace


class NotInProject(ValueError):
    pass


HOME_ENV = "FRAUD_DETECTION_HOME"  # the project root, for processes that run elsewhere (a Bento runs in its own copy)


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


def project_params(env: str | None = None) -> dict:
    """params.yaml as Kedro reads it (no catalog, no change of directory)."""
    from kedro.config import OmegaConfigLoader

    from fraud_detection.settings import CONFIG_LOADER_ARGS

    return OmegaConfigLoader(str(project_root() / "conf"), env=env, **CONFIG_LOADER_ARGS)["parameters"]


def project_context(env: str | None = None) -> SimpleNamespace:
    """`params` (params.yaml) and `catalog` (conf/base, overlaid by conf/<env>); the working directory becomes the
    project root, since the catalog's paths are relative to it."""
    from kedro.config import OmegaConfigLoader
    from kedro.io import DataCatalog

    from fraud_detection.settings import CONFIG_LOADER_ARGS

    root = project_root()
    os.chdir(root)
    loader = OmegaConfigLoader(str(root / "conf"), env=env, **CONFIG_LOADER_ARGS)
    return SimpleNamespace(params=loader["parameters"], catalog=DataCatalog.from_config(loader["catalog"]))
