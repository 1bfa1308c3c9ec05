"""The registry as a catalog entry: where MLflow's tracking store is and which lock guards alias moves
(conf/base: the sqlite store under data/mlflow and a lock file; conf/production: the tracking server and a
PostgreSQL advisory lock). Loading gives the address; the register node opens the registered model it names."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset, DatasetError

from fraud_detection.registry.registry import RegistryAddress


class ModelRegistryDataset(AbstractDataset[None, RegistryAddress]):
    def __init__(self, tracking_uri: str, lock: str, metadata: dict[str, Any] | None = None) -> None:
        self._address = RegistryAddress(tracking_uri, lock)
        self.metadata = metadata

    def load(self) -> RegistryAddress:
        return self._address

    def save(self, data: None) -> None:
        raise DatasetError("the model registry is written through its API (fraud_detection.registry), not saved")

    def _describe(self) -> dict[str, Any]:
        return {"tracking_uri": self._address.tracking_uri, "lock": self._address.lock}
