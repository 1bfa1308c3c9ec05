"""The project's own switches for telemetry: every tool we use phones home unless told not to.

`python -m fraud_detection.runtime.telemetry COMMAND [ARG ...]` runs COMMAND with the switches set (`make
mlflow-server` starts `mlflow server` so). MLflow decides at import whether to make its telemetry client (and an
installation id under ~/.config/mlflow), so the switches must be set before `import mlflow`."""

import os
import sys
from typing import NoReturn

TELEMETRY_OFF = {
    "KEDRO_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "true",  # Kedro and Evidently read any value, MLflow only "true"
    "BENTOML_DO_NOT_TRACK": "True",
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "FEAST_USAGE": "False",
}
USAGE = "usage: python -m fraud_detection.runtime.telemetry COMMAND [ARG ...]"


def disable_telemetry() -> None:
    """Switch telemetry off for this process and its children (a user's explicit setting wins). Where MLflow was
    imported first, the client it made is dropped before it records anything."""
    for name, value in TELEMETRY_OFF.items():
        os.environ.setdefault(name, value)
    if "mlflow.telemetry" in sys.modules:
        from mlflow.telemetry import set_telemetry_client

        set_telemetry_client()  # reads the switches again: no client while they say off


def run_without_telemetry(command: list[str]) -> NoReturn:
    """Become `command` (same process, signals and exit status), with the switches in its environment."""
    if not command:
        raise SystemExit(USAGE)
    disable_telemetry()
    try:
        os.execvp(command[0], command)
    except OSError as error:
        raise SystemExit(f"cannot run {command[0]!r}: {error.strerror}") from None


if __name__ == "__main__":
    run_without_telemetry(sys.argv[1:])
