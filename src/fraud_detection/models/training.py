"""Training, one code path for every scale: the same `fit` runs on a CPU, one GPU, or DDP over many GPUs and nodes;
only the Trainer's settings (params.yaml `train.trainer`) change.

`fit` fits the preprocessing on the training rows only, trains with early stopping on validation average
precision and returns the best epoch's weights as a `FraudScorer`; with `train.boosting.weight` > 0 it then
boosts trees on the same rows and validation split (models/boosting.py) and averages the two. Under DDP every rank
returns the same scorer (the trees are deterministic); callers write artifacts on global rank 0 only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback, EarlyStopping

from fraud_detection.models.boosting import fit_trees
from fraud_detection.models.data import TransactionDataModule
from fraud_detection.models.lightning_logs import quiet_lightning
from fraud_detection.models.params import TrainParams
from fraud_detection.models.preprocessing import Standardizer
from fraud_detection.models.scorer import FraudScorer, NetworkSpec
from fraud_detection.models.system import FraudClassifier
from fraud_detection.runtime.progress import lightning_progress_bar

MONITOR = "val_average_precision"


@dataclass(frozen=True)
class FitResult:
    scorer: FraudScorer
    history: list[dict[str, float]]  # one entry per epoch: train_loss, val_loss, val_average_precision, ...
    best_epoch: int
    best_score: float  # validation average precision of the best epoch
    seconds: float
    samples_per_second: float  # the network's training rows per second, all ranks together
    global_rank: int  # 0 in a single process; this process's rank under DDP
    trees_rounds: int  # the boosted trees kept (0: the network alone)


def fit(
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    features: tuple[str, ...],
    log_features: tuple[str, ...],
    config: TrainParams,
) -> FitResult:
    """Train on `train` (raw feature matrix in `features` order, labels), early-stopping on `validation`."""
    for name, (_, labels) in (("training", train), ("validation", validation)):
        _check_both_classes(name, labels)
    increasing = increasing_inputs(features, config.increasing)
    standardizer = Standardizer.fit(train[0], features, log_features if config.log1p else ())
    data = TransactionDataModule(
        (standardizer.transform(train[0]), train[1]),
        (standardizer.transform(validation[0]), validation[1]),
        config.batch_size,
        config.seed,
    )
    pl.seed_everything(config.seed, workers=True, verbose=False)
    spec = NetworkSpec(len(features), tuple(config.hidden_sizes), config.dropout, increasing)
    system = FraudClassifier(
        spec.build(), config.learning_rate, config.weight_decay, config.pos_weight, config.optimizer
    )
    best, history = BestWeights(), EpochHistory()
    quiet_lightning()
    progress_bar = lightning_progress_bar()  # a terminal's epochs bar; none in CI, DVC's logs or a file
    trainer = pl.Trainer(
        max_epochs=config.max_epochs,
        callbacks=[EarlyStopping(MONITOR, patience=config.patience, mode="max"), best, history, *progress_bar],
        deterministic=True,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=bool(progress_bar),
        enable_model_summary=False,
        num_sanity_val_steps=0,
        **config.trainer.as_kwargs(),
    )
    started = time.perf_counter()
    trainer.fit(system, data)
    seconds = time.perf_counter() - started
    if best.state is None:
        raise RuntimeError("training ended before a validation epoch completed: no model to keep")
    network_seconds = seconds
    trees = None
    if config.boosting.weight > 0:
        trees = fit_trees(train, validation, features, config.boosting, config.seed, increasing)
        seconds = time.perf_counter() - started
    return FitResult(
        scorer=FraudScorer(standardizer, spec, best.state, trees, config.boosting.weight),
        history=history.epochs,
        best_epoch=best.epoch,
        best_score=best.score,
        seconds=seconds,
        samples_per_second=len(train[1]) * len(history.epochs) / network_seconds,
        global_rank=trainer.global_rank,
        trees_rounds=trees.rounds if trees else 0,
    )


def fit_with_holdout(
    matrix: np.ndarray,
    labels: np.ndarray,
    features: tuple[str, ...],
    log_features: tuple[str, ...],
    config: TrainParams,
) -> FitResult:
    """`fit`, early-stopping on a stratified `config.validation_fraction` of the rows (drawn with the config's seed)."""
    _check_both_classes("training", labels)
    train_rows, validation_rows = stratified_split(labels, config.validation_fraction, config.seed)
    train = (matrix[train_rows], labels[train_rows])
    return fit(train, (matrix[validation_rows], labels[validation_rows]), features, log_features, config)


def increasing_inputs(features: tuple[str, ...], names: list[str]) -> tuple[int, ...]:
    """The column indices of `train.increasing`; an unknown name is an error that lists the features."""
    unknown = [name for name in names if name not in features]
    if unknown:
        raise ValueError(f"train.increasing names {unknown}, which are not features; expected some of {list(features)}")
    return tuple(sorted(features.index(name) for name in names))


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, validation): `fraction` of each class to validation, drawn with `seed`; sorted."""
    if not 0 < fraction < 1:
        raise ValueError(f"train.validation_fraction is {fraction}; expected a number between 0 and 1")
    rng = np.random.default_rng(seed)
    validation = np.concatenate(
        [rng.permutation(idx)[: round(len(idx) * fraction)] for idx in (np.flatnonzero(labels == c) for c in (0, 1))]
    )
    mask = np.zeros(len(labels), dtype=bool)
    mask[validation] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _check_both_classes(name: str, labels: np.ndarray) -> None:
    frauds = int(np.sum(labels == 1))
    if frauds == 0 or frauds == len(labels):
        raise ValueError(
            f"the {name} set has {len(labels)} rows and {frauds} frauds; expected both frauds and genuine "
            "transactions (widen the data window or check the labels)"
        )


class BestWeights(Callback):
    """Keeps a copy of the network's weights at its best validation average precision."""

    def __init__(self) -> None:
        self.state: dict | None = None
        self.epoch, self.score = -1, float("-inf")

    def on_validation_end(self, trainer: pl.Trainer, system: pl.LightningModule) -> None:
        score = float(trainer.callback_metrics[MONITOR])
        if score > self.score:
            self.score, self.epoch = score, trainer.current_epoch
            self.state = {k: v.detach().cpu().clone() for k, v in system.network.state_dict().items()}


class EpochHistory(Callback):
    """The epoch-level metrics, for tracking."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, system: pl.LightningModule) -> None:
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        self.epochs.append({"epoch": trainer.current_epoch, **metrics})
