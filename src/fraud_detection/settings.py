"""Kedro project settings: `params.yaml` at the project root is the only parameters file, checked by a typed model
when the context loads; nodes receive its typed values (runtime/kedro_project.py)."""

from fraud_detection.runtime.kedro_project import ProjectCatalog, ProjectContext, ProjectHooks
from fraud_detection.runtime.project import CONFIG_LOADER_ARGS as PROJECT_CONFIG_LOADER_ARGS
from fraud_detection.runtime.project import ProjectConfigLoader
from fraud_detection.runtime.telemetry import disable_telemetry

disable_telemetry()

HOOKS = (ProjectHooks(),)
CONTEXT_CLASS = ProjectContext
DATA_CATALOG_CLASS = ProjectCatalog
CONFIG_LOADER_CLASS = ProjectConfigLoader
CONFIG_LOADER_ARGS = PROJECT_CONFIG_LOADER_ARGS
