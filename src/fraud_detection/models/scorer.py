"""The trained model as one object: preprocessing + network. Every scoring path (evaluation, the MLflow pyfunc,
batch and real-time serving) calls `predict_proba` on the same saved files."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fraud_detection.models.network import FeedForward
from fraud_detection.models.preprocessing import Standardizer

PREPROCESSING_FILE = "preprocessing.json"
NETWORK_FILE = "network.json"
WEIGHTS_FILE = "weights.pt"


@dataclass(frozen=True)
class NetworkSpec:
    """What it takes to rebuild the network before loading its weights."""

    n_inputs: int
    hidden_sizes: tuple[int, ...]
    dropout: float

    def build(self) -> FeedForward:
        return FeedForward(self.n_inputs, self.hidden_sizes, self.dropout)


class FraudScorer:
    """Fraud probabilities from raw feature values (columns in `features` order)."""

    def __init__(self, standardizer: Standardizer, spec: NetworkSpec, state: dict[str, torch.Tensor]) -> None:
        self.standardizer, self.spec = standardizer, spec
        self.network = spec.build()
        self.network.load_state_dict(state)
        self.network.eval()

    @property
    def features(self) -> tuple[str, ...]:
        return self.standardizer.features

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """One probability per row, float64."""
        with torch.inference_mode():
            logits = self.network(torch.from_numpy(self.standardizer.transform(matrix)))
        return torch.sigmoid(logits).double().numpy()

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / PREPROCESSING_FILE).write_text(json.dumps(self.standardizer.to_dict(), indent=1))
        (folder / NETWORK_FILE).write_text(json.dumps(dataclasses.asdict(self.spec), indent=1))
        torch.save(self.network.state_dict(), folder / WEIGHTS_FILE)

    @classmethod
    def load(cls, folder: Path) -> FraudScorer:
        standardizer = Standardizer.from_dict(json.loads((folder / PREPROCESSING_FILE).read_text()))
        spec = json.loads((folder / NETWORK_FILE).read_text())
        state = torch.load(folder / WEIGHTS_FILE, weights_only=True)
        return cls(standardizer, NetworkSpec(spec["n_inputs"], tuple(spec["hidden_sizes"]), spec["dropout"]), state)
