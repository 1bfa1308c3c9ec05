"""Run by tests/models/test_ddp.py as a subprocess: Lightning's `ddp` strategy re-launches this script once per
extra rank. Every rank runs the train stage's node and the candidate dataset's save, as `kedro run` does, and
leaves its final weights in `<workdir>/weights_rank<N>.pt` for the test to compare.

Usage: python tests/models/ddp_train.py <workdir>   (workdir holds training_set.parquet and train_params.json,
params.yaml `train` as JSON: checked here by the same model)
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import polars as pl
import torch

from fraud_detection.models.params import TrainParams
from fraud_detection.pipelines.train.nodes import train_candidate
from fraud_detection.registry.candidate import CandidateDataset
from fraud_detection.runtime.telemetry import disable_telemetry


def main(workdir: Path) -> None:
    disable_telemetry()
    logging.basicConfig(level=logging.INFO)
    params = TrainParams.model_validate_json((workdir / "train_params.json").read_text())
    training_set = pl.read_parquet(workdir / "training_set.parquet")
    candidate = train_candidate(training_set, params, 7, "fraud_model_v1")
    torch.save(candidate.scorer.network.state_dict(), workdir / f"weights_rank{candidate.global_rank}.pt")
    dataset = CandidateDataset(
        path=str(workdir / "candidate"),
        tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}",
        experiment="ddp",
        artifact_location=str(workdir / "artifacts"),
    )
    dataset.save(candidate)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
