"""Training and evaluation on the default-size data (run `make repro` first: it reads the training set).

Side by side, in the same run:
- training throughput (training rows per second, validation off) of the Lightning system against a plain torch
  loop over the same standardized window, network, batch size, optimizer and loss: the ratio is Lightning's
  overhead;
- the `train` stage's work (window, fit with early stopping, MLflow run + pyfunc model into a temporary store);
- the `evaluate` stage's work (4 folds x candidate + 2 baselines, metrics, plot data).

Run: uv run python -m bench.bench_train [--runs 3] [--epochs 3] [--stage-runs 1]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytorch_lightning as pl_lightning
import torch

from bench.timing import median_seconds, save
from fraud_detection.evaluation.protocol import labelled_window
from fraud_detection.features.definitions import FEATURES, HEAVY_TAILED
from fraud_detection.features.matrix import feature_matrix
from fraud_detection.models.data import TransactionDataModule
from fraud_detection.models.network import FeedForward
from fraud_detection.models.params import TrainParams
from fraud_detection.models.preprocessing import Standardizer
from fraud_detection.models.system import FraudClassifier
from fraud_detection.pipelines.evaluate.nodes import backtest, backtest_metrics, backtest_plots
from fraud_detection.pipelines.train.nodes import train_candidate
from fraud_detection.registry.candidate import CandidateDataset
from fraud_detection.runtime.project import project_params
from fraud_detection.runtime.telemetry import disable_telemetry

ROOT = Path(__file__).resolve().parents[1]
TRAINING_SET = ROOT / "data" / "05_model_input" / "training_set.parquet"


def lightning_epochs(x: np.ndarray, y: np.ndarray, config: TrainParams, epochs: int) -> None:
    pl_lightning.seed_everything(config.seed, verbose=False)
    system = FraudClassifier(_network(config, x.shape[1]), config.learning_rate, config.weight_decay,
                             config.pos_weight, config.optimizer)  # fmt: skip
    trainer = pl_lightning.Trainer(
        max_epochs=epochs, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, **config.trainer.as_kwargs(),
    )  # fmt: skip
    trainer.fit(system, TransactionDataModule((x, y), (x[:1], y[:1]), config.batch_size, config.seed))


def plain_torch_epochs(x: np.ndarray, y: np.ndarray, config: TrainParams, epochs: int) -> None:
    """The baseline: the same work written as a bare loop."""
    torch.manual_seed(config.seed)
    network = _network(config, x.shape[1])
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    loss = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(config.pos_weight))
    features, labels = torch.from_numpy(x), torch.from_numpy(y.astype(np.float32))
    generator = torch.Generator().manual_seed(config.seed)
    network.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(features), generator=generator).split(config.batch_size):
            optimizer.zero_grad()
            loss(network(features[batch]), labels[batch]).backward()
            optimizer.step()


def _network(config: TrainParams, n_inputs: int) -> torch.nn.Module:
    return FeedForward(n_inputs, tuple(config.hidden_sizes), config.dropout)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--stage-runs", type=int, default=1)
    args = parser.parse_args()
    disable_telemetry()
    logging.basicConfig(level=logging.WARNING)
    params = project_params(root=ROOT)
    training_set = pl.read_parquet(TRAINING_SET)
    config, label_delay_days = params.train, params.features.label_delay_days
    window = labelled_window(training_set, config.window_days, label_delay_days,
                             before_horizon_days=config.holdout_days)  # fmt: skip
    matrix = feature_matrix(window)
    x = Standardizer.fit(matrix, FEATURES, HEAVY_TAILED).transform(matrix)
    y = window["tx_fraud"].to_numpy()
    rows = len(y) * args.epochs

    lightning, lightning_runs = median_seconds(lambda: lightning_epochs(x, y, config, args.epochs), args.runs)
    plain, plain_runs = median_seconds(lambda: plain_torch_epochs(x, y, config, args.epochs), args.runs)

    def train_stage() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            candidate = train_candidate(training_set, config, label_delay_days, params.training_set.feature_service)
            CandidateDataset(f"{tmp}/candidate", f"sqlite:///{tmp}/mlflow.db", "bench", f"{tmp}/artifacts").save(
                candidate
            )
            epochs.append(len(candidate.history))

    def evaluate_stage() -> None:
        scores = backtest(training_set, config, params.evaluate, label_delay_days)
        backtest_metrics(scores, params.evaluate)
        backtest_plots(scores)

    epochs: list[int] = []  # filled by train_stage
    train_times = [_timed(train_stage) for _ in range(args.stage_runs)]
    evaluate_times = [_timed(evaluate_stage) for _ in range(args.stage_runs)]
    save(
        "train",
        {
            "data": {
                "window_rows": len(y),
                "features": len(FEATURES),
                "epochs_timed": args.epochs,
                "batch_size": config.batch_size,
                "hidden_sizes": list(config.hidden_sizes),
            },
            "throughput_rows_per_s": {
                "lightning": {"median": rows / lightning, "runs_s": lightning_runs},
                "plain_torch_loop": {"median": rows / plain, "runs_s": plain_runs},
                "lightning_overhead_ratio": lightning / plain,
            },
            **(
                {
                    "train_stage_s": {
                        "median": float(np.median(train_times)),
                        "runs": train_times,
                        "epochs_run": epochs,
                    },
                    "evaluate_stage_s": {"median": float(np.median(evaluate_times)), "runs": evaluate_times},
                }
                if args.stage_runs
                else {}
            ),
        },
    )


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
