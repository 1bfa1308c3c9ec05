"""The project's logging configuration, `conf/logging.yml`: Kedro reads it when `kedro run` starts (the place
Kedro 1.7 looks by default, relative to the working directory; `KEDRO_LOGGING_CONFIG` names another file), and
`fraud-detection` applies the same file through `use_project_logging`."""

from __future__ import annotations

import logging.config
import os
from pathlib import Path
from typing import Any

import yaml

LOGGING_FILE = Path("conf") / "logging.yml"
KEDRO_LOGGING_ENV = "KEDRO_LOGGING_CONFIG"


def logging_file(root: Path) -> Path:
    """The file Kedro configures logging from in `root`: `$KEDRO_LOGGING_CONFIG` if set, else conf/logging.yml."""
    return Path(os.environ.get(KEDRO_LOGGING_ENV) or root / LOGGING_FILE)


def logging_config(path: Path) -> dict[str, Any]:
    """The logging configuration (a `logging.config.dictConfig` mapping) that `path` holds."""
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read the logging configuration {path}: {error}") from error
    if not isinstance(config, dict) or config.get("version") != 1:
        raise ValueError(f"{path} holds no logging configuration; expected a mapping with `version: 1` (dictConfig)")
    return config


def use_project_logging(root: Path) -> Path:
    """Configure this process's logging from the project's file (see `logging_file`); returns the file used."""
    path = logging_file(root)
    logging.config.dictConfig(logging_config(path))
    return path
