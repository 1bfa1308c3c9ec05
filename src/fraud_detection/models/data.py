"""The Lightning data module over preprocessed arrays: deterministic given its seed.

Batches are drawn whole (a sampler of index tensors, no per-row collation), which keeps the data loader's cost per
step far below the network's. Under DDP, Lightning wraps the sampler so that each rank gets its own share of the
batches.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

VALIDATION_BATCH_SIZE = 8192


class TransactionDataModule(pl.LightningDataModule):
    def __init__(
        self,
        train: tuple[np.ndarray, np.ndarray],
        validation: tuple[np.ndarray, np.ndarray],
        batch_size: int,
        seed: int,
    ) -> None:
        super().__init__()
        for name, (features, labels) in (("train", train), ("validation", validation)):
            if len(features) != len(labels) or len(features) == 0:
                raise ValueError(f"{name} set has {len(features)} rows and {len(labels)} labels; expected equal, > 0")
        if len(train[0]) < batch_size:
            raise ValueError(f"train set has {len(train[0])} rows, fewer than one batch ({batch_size})")
        self._train, self._validation = _dataset(*train), _dataset(*validation)
        self.batch_size = batch_size
        self.seed = seed

    def train_dataloader(self) -> DataLoader:
        return _batches(self._train, Batches(len(self._train), self.batch_size, shuffle=True, seed=self.seed))

    def val_dataloader(self) -> DataLoader:
        return _batches(self._validation, Batches(len(self._validation), VALIDATION_BATCH_SIZE))


class Batches(Sampler[torch.Tensor]):
    """Index tensors of `batch_size` rows (the last one shorter): a new permutation each epoch when shuffled, drawn
    from one generator seeded once, so the sequence of epochs is reproducible."""

    def __init__(self, n_rows: int, batch_size: int, shuffle: bool = False, seed: int = 0) -> None:
        self.n_rows, self.batch_size, self.shuffle = n_rows, batch_size, shuffle
        self._generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[torch.Tensor]:
        order = torch.randperm(self.n_rows, generator=self._generator) if self.shuffle else torch.arange(self.n_rows)
        return iter(order.split(self.batch_size))

    def __len__(self) -> int:
        return math.ceil(self.n_rows / self.batch_size)


def _dataset(features: np.ndarray, labels: np.ndarray) -> TensorDataset:
    return TensorDataset(torch.as_tensor(features, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.float32))


def _batches(dataset: TensorDataset, batches: Batches) -> DataLoader:
    """A loader whose sampler yields whole batches of indices (`batch_size=None`: no collation)."""
    return DataLoader(dataset, sampler=batches, batch_size=None)
