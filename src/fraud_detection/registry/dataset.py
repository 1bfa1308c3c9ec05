"""The registry as a catalog entry: where MLflow's tracking store is and which lock guards alias moves
(conf/base: the sqlite store under data/mlflow and a lock file; conf/production: the tracking server and a
PostgreSQL advisory lock). Loading gives the address; the register node opens the registered model it names.
Under `dvc exp run` the address also names the DVC experiment (DVC sets `DVC_EXP_NAME` in its stages' environment,
in the workspace, `--temp` and `--queue` alike): a registry opened from it registers but moves no alias."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from kedro.io import AbstractDataset, DatasetError

from fraud_detection.registry.registry import RegistryAddress

DVC_EXP_NAME = "DVC_EXP_NAME"


class ModelRegistryDataset(AbstractDataset[None, RegistryAddress]):
    def __init__(self, tracking_uri: str, lock: str, metadata: dict[str, Any] | None = None) -> None:
        self._address = RegistryAddress(tracking_uri, lock)
        self.metadata = metadata

    def load(self) -> RegistryAddress:
        """The address, with the DVC experiment this process runs in (read when loaded: Kedro loads per run)."""
        return replace(self._address, dvc_experiment=dvc_experiment_name(os.environ))

    def save(self, data: None) -> None:
        raise DatasetError("the model registry is written through its API (fraud_detection.registry), not saved")

    def _describe(self) -> dict[str, Any]:
        return {"tracking_uri": self._address.tracking_uri, "lock": self._address.lock}


def dvc_experiment_name(environ: Mapping[str, str]) -> str | None:
    """The name of the DVC experiment running this process, None outside one (unset or blank)."""
    return (environ.get(DVC_EXP_NAME) or "").strip() or None
