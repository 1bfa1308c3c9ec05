"""The project's own switches for telemetry: every tool we use phones home unless told not to."""

import os

TELEMETRY_OFF = {
    "KEDRO_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "BENTOML_DO_NOT_TRACK": "True",
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "FEAST_USAGE": "False",
}


def disable_telemetry() -> None:
    """Switch telemetry off for this process and its children (a user's explicit setting wins)."""
    for name, value in TELEMETRY_OFF.items():
        os.environ.setdefault(name, value)
