"""Multi-device proof without GPUs: DDP over 2 CPU processes (gloo), through the train stage's own node."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import polars as pl
import pytest
import torch

from tests.conftest import PROJECT_ROOT, changed

SCRIPT = PROJECT_ROOT / "tests" / "models" / "ddp_train.py"


@pytest.mark.slow
def test_ddp_over_two_cpu_processes(tmp_path: Path, small_training_set: pl.DataFrame, small_train_params) -> None:
    small_training_set.write_parquet(tmp_path / "training_set.parquet")
    trainer = {"accelerator": "cpu", "devices": 2, "strategy": "ddp", "precision": "32-true", "num_nodes": 1}
    (tmp_path / "train_params.json").write_text(changed(small_train_params, trainer=trainer).model_dump_json())
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "MASTER_ADDR": "127.0.0.1"}
    command = [sys.executable, str(SCRIPT), str(tmp_path)]
    done = subprocess.run(command, check=False, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    ranks = [torch.load(tmp_path / f"weights_rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys()
    for name in ranks[0]:
        assert torch.equal(ranks[0][name], ranks[1][name]), f"{name} differs between the ranks"

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("ddp").experiment_id])
    assert len(runs) == 1, "only rank 0 logs to MLflow"
    assert runs[0].data.params["train.trainer.strategy"] == "ddp"
    assert json.loads((tmp_path / "candidate" / "candidate.json").read_text())["run"]["run_id"] == runs[0].info.run_id
    assert "rank 1: the candidate is written by rank 0 only" in done.stdout + done.stderr
