"""Kedro project settings: `params.yaml` at the project root is the only parameters file."""

from kedro.config import OmegaConfigLoader

from fraud_detection.runtime.telemetry import disable_telemetry

disable_telemetry()

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # Parameters come from params.yaml (shared with DVC), never from a copy under conf/.
    "config_patterns": {"parameters": ["../../params.yaml"]},
}
