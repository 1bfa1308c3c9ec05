"""The Lightning training system around an injected network: weighted loss, optimiser, validation AP."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MeanMetric
from torchmetrics.classification import BinaryAUROC, BinaryAveragePrecision

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


class FraudClassifier(pl.LightningModule):
    """Binary classification of transactions. `pos_weight` scales the loss of frauds (class imbalance)."""

    def __init__(
        self,
        network: nn.Module,
        learning_rate: float,
        weight_decay: float,
        pos_weight: float,
        optimizer: str,
    ) -> None:
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"train.optimizer is {optimizer!r}; expected one of {sorted(OPTIMIZERS)}")
        super().__init__()
        self.save_hyperparameters(ignore=["network"])
        self.network = network
        self.loss = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight))
        self.train_loss = MeanMetric()
        self.val_ap = BinaryAveragePrecision()
        self.val_auc = BinaryAUROC()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Fraud probabilities."""
        return torch.sigmoid(self.network(features))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        features, labels = batch
        loss = self.loss(self.network(features), labels)
        self.train_loss.update(loss.detach(), len(labels))
        return loss

    def on_train_epoch_end(self) -> None:
        # Accumulated with a metric and logged once per epoch: self.log on every step costs as much as the step.
        self.log("train_loss", self.train_loss.compute(), sync_dist=True)
        self.train_loss.reset()

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        features, labels = batch
        logits = self.network(features)
        self.log("val_loss", self.loss(logits, labels), on_epoch=True, sync_dist=True)
        self.val_ap.update(torch.sigmoid(logits), labels.int())
        self.val_auc.update(torch.sigmoid(logits), labels.int())

    def on_validation_epoch_end(self) -> None:
        self.log("val_average_precision", self.val_ap.compute(), sync_dist=True)
        self.log("val_auc_roc", self.val_auc.compute(), sync_dist=True)
        self.val_ap.reset()
        self.val_auc.reset()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        optimizer = OPTIMIZERS[self.hparams.optimizer]
        return optimizer(self.parameters(), lr=self.hparams.learning_rate, weight_decay=self.hparams.weight_decay)
