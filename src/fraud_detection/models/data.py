"""The Lightning data module over preprocessed arrays: deterministic given its seed."""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset


class TransactionDataModule(pl.LightningDataModule):
    def __init__(
        self,
        train: tuple[np.ndarray, np.ndarray],
        validation: tuple[np.ndarray, np.ndarray],
        batch_size: int = 512,
        seed: int = 0,
    ) -> None:
        super().__init__()
        for name, (features, labels) in (("train", train), ("validation", validation)):
            if len(features) != len(labels) or len(features) == 0:
                raise ValueError(f"{name} set has {len(features)} rows and {len(labels)} labels; expected equal, > 0")
        if len(train[0]) < batch_size:
            raise ValueError(f"train set has {len(train[0])} rows, fewer than one batch ({batch_size})")
        self._train, self._validation = train, validation
        self.batch_size = batch_size
        self.seed = seed

    def train_dataloader(self) -> DataLoader:
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(_dataset(*self._train), batch_size=self.batch_size, shuffle=True, generator=generator)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(_dataset(*self._validation), batch_size=max(self.batch_size, 4096))


def _dataset(features: np.ndarray, labels: np.ndarray) -> TensorDataset:
    return TensorDataset(torch.as_tensor(features, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.float32))
