"""The trained network's inference in numpy, free of torch: what serving, batch scoring and a Bento run.

A network is a list of steps, `("linear", W^T, b)`, `("relu", None, None)` and `("mixed", None, None)` (ReLU on the
first half of the units, min(x, 0) on the rest), saved as `weights.npz` beside the torch weights (arrays
`kind_<i>`, `weight_<i>`, `bias_<i>`; read without pickle). `scorer.numpy_layers` derives the steps from a torch
network; a monotone layer's weights are stored as used (absolute where constrained).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

Layer = tuple[str, np.ndarray | None, np.ndarray | None]
KINDS = ("linear", "relu", "mixed")


def convex_units(width: int) -> int:
    """How many of a mixed layer's units are convex (ReLU); the rest are concave (min(x, 0))."""
    return (width + 1) // 2


def forward(layers: list[Layer], x: np.ndarray) -> np.ndarray:
    """The network's logits (float32 rows in, one logit per row out); `x` is overwritten."""
    hidden = x
    for kind, weight, bias in layers:
        if kind == "linear":
            hidden = hidden @ weight
            hidden += bias
        elif kind == "relu":
            np.maximum(hidden, np.float32(0), out=hidden)
        else:
            half = convex_units(hidden.shape[1])
            np.maximum(hidden[:, :half], np.float32(0), out=hidden[:, :half])
            np.minimum(hidden[:, half:], np.float32(0), out=hidden[:, half:])
    return hidden[:, 0]


def save_layers(layers: list[Layer], path: Path) -> None:
    arrays: dict[str, np.ndarray] = {}
    for i, (kind, weight, bias) in enumerate(layers):
        arrays[f"kind_{i}"] = np.array(kind)
        if kind == "linear":
            arrays[f"weight_{i}"], arrays[f"bias_{i}"] = weight, bias
    np.savez(path, **arrays)


def load_layers(path: Path) -> list[Layer]:
    with np.load(path, allow_pickle=False) as saved:
        count = sum(1 for name in saved.files if name.startswith("kind_"))
        layers: list[Layer] = []
        for i in range(count):
            kind = str(saved[f"kind_{i}"])
            if kind not in KINDS:
                raise ValueError(f"{path}: layer {i} is {kind!r}; expected one of {KINDS}")
            linear = kind == "linear"
            weight = saved[f"weight_{i}"].astype(np.float32) if linear else None
            bias = saved[f"bias_{i}"].astype(np.float32) if linear else None
            layers.append((kind, weight, bias))
    return layers
