"""The torch network: a feed-forward classifier that outputs one logit per transaction.

With `increasing` inputs the network is monotone in them by construction (after Runje & Shankaranarayana,
"Constrained Monotonic Neural Networks", ICML 2023): their first-layer weights and every later layer's weights
are taken as absolute values, and each hidden layer applies increasing activations, half convex (ReLU) and half
concave (min(x, 0)), so that the network can still bend both ways. Raising such an input never lowers the logit.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional

from fraud_detection.models.numpy_network import convex_units


class FeedForward(nn.Module):
    def __init__(
        self, n_inputs: int, hidden_sizes: tuple[int, ...], dropout: float, increasing: tuple[int, ...] = ()
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width, positive = n_inputs, _mask(n_inputs, increasing)
        for size in hidden_sizes:
            activation = MixedReLU() if increasing else nn.ReLU()
            layers += [_linear(width, size, positive), activation, nn.Dropout(dropout)]
            width, positive = size, _mask(size, range(size)) if increasing else None
        layers.append(_linear(width, 1, positive))
        self.layers = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (before the sigmoid), shape (batch,)."""
        return self.layers(features).squeeze(-1)


class PositiveLinear(nn.Linear):
    """A linear layer whose weights on the `positive` inputs are used as absolute values."""

    def __init__(self, in_features: int, out_features: int, positive: torch.Tensor) -> None:
        super().__init__(in_features, out_features)
        self.register_buffer("positive", positive, persistent=False)  # the architecture, not a weight

    def effective_weight(self) -> torch.Tensor:
        return torch.where(self.positive, self.weight.abs(), self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return functional.linear(x, self.effective_weight(), self.bias)


class MixedReLU(nn.Module):
    """ReLU on the first half of the units, min(x, 0) on the rest: both increasing, one convex, one concave."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = convex_units(x.shape[-1])
        return torch.cat([functional.relu(x[..., :half]), torch.clamp(x[..., half:], max=0.0)], dim=-1)


def _mask(width: int, indices) -> torch.Tensor | None:
    indices = list(indices)
    if not indices:
        return None
    mask = torch.zeros(width, dtype=torch.bool)
    mask[indices] = True
    return mask


def _linear(in_features: int, out_features: int, positive: torch.Tensor | None) -> nn.Linear:
    return nn.Linear(in_features, out_features) if positive is None else PositiveLinear(in_features, out_features,
                                                                                      positive)  # fmt: skip
