"""The trained model as one object: preprocessing + network, and optionally gradient-boosted trees whose
probability is averaged with the network's (weight `train.boosting.weight`). Every scoring path (evaluation, the
MLflow pyfunc, batch and real-time serving) calls `predict_proba` on the same saved files.

Inference runs the network's layers in numpy (float32, the trained weights as they are, `numpy_network.py`): for one
row that is about 10x cheaper than an eager torch call (no dispatcher, autograd or thread-pool overhead), and for a
million rows it is no slower. A saved scorer holds its layers as `weights.npz` beside the torch weights, so loading
one to score needs no torch (a Bento carries none); torch remains the training engine, and the torch network is
built from `weights.pt` only when something asks for it (`network`: the online learner, the torch reference that
`tests/models/test_models.py` checks inference against).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fraud_detection.models.boosting import BoostedTrees
from fraud_detection.models.numpy_network import Layer, forward, load_layers, save_layers
from fraud_detection.models.preprocessing import Standardizer

if TYPE_CHECKING:
    import torch

    from fraud_detection.models.network import FeedForward

PREPROCESSING_FILE = "preprocessing.json"
NETWORK_FILE = "network.json"
WEIGHTS_FILE = "weights.pt"  # the torch state dict: training and fine-tuning
LAYERS_FILE = "weights.npz"  # the same weights as numpy inference steps: scoring, without torch
TREES_FILE = "trees.txt"  # LightGBM's text format, present when the candidate has trees
BLEND_FILE = "blend.json"  # {"trees_weight": w}: probability = (1 - w) * network + w * trees


@dataclass(frozen=True)
class NetworkSpec:
    """What it takes to rebuild the network before loading its weights."""

    n_inputs: int
    hidden_sizes: tuple[int, ...]
    dropout: float
    increasing: tuple[int, ...] = ()  # inputs the network is monotone (non-decreasing) in

    def build(self) -> FeedForward:
        from fraud_detection.models.network import FeedForward

        return FeedForward(self.n_inputs, self.hidden_sizes, self.dropout, self.increasing)


class FraudScorer:
    """Fraud probabilities from raw feature values (columns in `features` order). Built from a network's torch
    weights (`state`: training, the online learner) or loaded from a saved folder (`load`: numpy layers only)."""

    def __init__(
        self,
        standardizer: Standardizer,
        spec: NetworkSpec,
        state: dict[str, torch.Tensor],
        trees: BoostedTrees | None = None,
        trees_weight: float = 0.0,
    ) -> None:
        network = _network(spec, state)
        self._setup(standardizer, spec, numpy_layers(network), trees, trees_weight)
        self._network, self._weights_file = network, None

    def _setup(self, standardizer: Standardizer, spec: NetworkSpec, layers: list[Layer], trees: BoostedTrees | None,
               trees_weight: float) -> None:  # fmt: skip
        if (trees is None) != (trees_weight == 0) or not 0 <= trees_weight <= 1:
            raise ValueError(f"trees_weight is {trees_weight}; expected 0 without trees, in (0, 1] with them")
        self.standardizer, self.spec, self._layers = standardizer, spec, layers
        self.trees, self.trees_weight = trees, trees_weight
        log_features = set(standardizer.log_features)
        self._log_mask = np.array([name in log_features for name in standardizer.features])
        self._log_columns = np.flatnonzero(self._log_mask)
        self._mean, self._scale = np.asarray(standardizer.mean), np.asarray(standardizer.scale)

    @property
    def features(self) -> tuple[str, ...]:
        return self.standardizer.features

    @property
    def network(self) -> FeedForward:
        """The torch network in eval mode (built from the saved weights on first use: needs torch)."""
        if self._network is None:
            import torch

            self._network = _network(self.spec, torch.load(self._weights_file, weights_only=True))
        return self._network

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        """One probability per row (columns in `features` order), float64."""
        x = np.array(matrix, dtype=np.float64)  # a copy: transformed in place
        # the Standardizer's transform (log1p of the clipped heavy-tailed columns, centre, scale), fused
        logged = np.log1p(np.maximum(x[:, self._log_columns], 0.0))
        x[:, self._log_columns] = logged
        x -= self._mean
        x /= self._scale
        logits = forward(self._layers, x.astype(np.float32))
        return self._blend(1.0 / (1.0 + np.exp(-logits.astype(np.float64))), matrix)

    def _blend(self, network: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        if self.trees is None:
            return network
        trees = self.trees.predict_proba(np.asarray(matrix, dtype=np.float64))
        return (1.0 - self.trees_weight) * network + self.trees_weight * trees

    def neutral_row(self) -> np.ndarray:
        """Raw feature values at the training mean (what preprocessing maps to 0): the baseline a feature is set
        to when measuring how much it drives a score."""
        mean = self._mean
        return np.where(self._log_mask, np.expm1(mean), mean)

    def predict_proba_torch(self, matrix: np.ndarray) -> np.ndarray:
        """The same through the torch network (the reference `predict_proba` is tested against)."""
        import torch

        with torch.inference_mode():
            logits = self.network(torch.from_numpy(self.standardizer.transform(matrix)))
        return self._blend(torch.sigmoid(logits).double().numpy(), matrix)

    def save(self, folder: Path) -> None:
        import torch

        folder.mkdir(parents=True, exist_ok=True)
        (folder / PREPROCESSING_FILE).write_text(json.dumps(self.standardizer.to_dict(), indent=1))
        (folder / NETWORK_FILE).write_text(json.dumps(dataclasses.asdict(self.spec), indent=1))
        torch.save(self.network.state_dict(), folder / WEIGHTS_FILE)
        save_layers(self._layers, folder / LAYERS_FILE)
        if self.trees is not None:
            self.trees.save(folder / TREES_FILE)
            (folder / BLEND_FILE).write_text(json.dumps({"trees_weight": self.trees_weight}))

    @classmethod
    def load(cls, folder: Path) -> FraudScorer:
        """A saved scorer, ready to score without torch (a folder saved before `weights.npz` existed needs it)."""
        standardizer = Standardizer.from_dict(json.loads((folder / PREPROCESSING_FILE).read_text()))
        saved = json.loads((folder / NETWORK_FILE).read_text())
        spec = NetworkSpec(saved["n_inputs"], tuple(saved["hidden_sizes"]), saved["dropout"],
                           tuple(saved.get("increasing", ())))  # fmt: skip
        trees, weight = None, 0.0
        if (folder / TREES_FILE).exists():
            trees = BoostedTrees.load(folder / TREES_FILE)
            weight = json.loads((folder / BLEND_FILE).read_text())["trees_weight"]
        if not (folder / LAYERS_FILE).exists():  # saved before the numpy layers were
            import torch

            return cls(standardizer, spec, torch.load(folder / WEIGHTS_FILE, weights_only=True), trees, weight)
        scorer = cls.__new__(cls)
        scorer._setup(standardizer, spec, load_layers(folder / LAYERS_FILE), trees, weight)
        scorer._network, scorer._weights_file = None, folder / WEIGHTS_FILE
        return scorer


def _network(spec: NetworkSpec, state: dict[str, Any]) -> FeedForward:
    network = spec.build()
    network.load_state_dict(state)
    network.eval()
    return network


def numpy_layers(network: torch.nn.Module) -> list[Layer]:
    """The network's layers in inference mode, as numpy steps: ("linear", W^T, b), ("relu", None, None) and
    ("mixed", None, None); Dropout is the identity."""
    import torch

    from fraud_detection.models.network import FeedForward, MixedReLU, PositiveLinear

    layers: list[Layer] = []
    for module in network.modules():
        if isinstance(module, torch.nn.Linear):
            effective = module.effective_weight() if isinstance(module, PositiveLinear) else module.weight
            weight = effective.detach().cpu().numpy().T.copy()
            bias = module.bias.detach().cpu().numpy().copy() if module.bias is not None else np.zeros(
                weight.shape[1], dtype=np.float32)  # fmt: skip
            layers.append(("linear", weight, bias))
        elif isinstance(module, torch.nn.ReLU):
            layers.append(("relu", None, None))
        elif isinstance(module, MixedReLU):
            layers.append(("mixed", None, None))
        elif not isinstance(module, (torch.nn.Dropout, torch.nn.Sequential, FeedForward)):
            raise TypeError(f"layer {type(module).__name__} has no numpy inference; expected Linear, ReLU, Dropout")
    return layers


class OnFeatures:
    """A scorer trained on another feature set (a model registered before features were added), called like today's
    models: on matrices in `features` order, it picks its own columns by name."""

    def __init__(self, scorer: FraudScorer, features: tuple[str, ...]) -> None:
        missing = [name for name in scorer.features if name not in features]
        if missing:
            raise ValueError(f"the model needs features {missing} that no longer exist; expected names of {features}")
        self.scorer, self.features = scorer, features
        self._columns = np.array([features.index(name) for name in scorer.features])

    def predict_proba(self, matrix: np.ndarray) -> np.ndarray:
        return self.scorer.predict_proba(np.asarray(matrix, dtype=np.float64)[:, self._columns])

    def neutral_row(self) -> np.ndarray:
        """The scorer's neutral row in `features` order (the features it does not use at 0)."""
        row = np.zeros(len(self.features))
        row[self._columns] = self.scorer.neutral_row()
        return row


def on_features(scorer: FraudScorer, features: tuple[str, ...]) -> FraudScorer | OnFeatures:
    """The scorer on matrices in `features` order: itself when it was trained on exactly them."""
    return scorer if tuple(scorer.features) == tuple(features) else OnFeatures(scorer, features)
