"""A/B assignment: a customer always gets the same variant, and keeps it while its variant's share grows.

The customer id and `serve.ab.salt` are hashed (BLAKE2b, 8 bytes) to a point in [0, 1). The first variant of
`serve.ab.variants` is the control; each other one (a treatment) owns a lane of that interval, the k treatments
k lanes of width 1/k from the top down, and takes its share from the top of its lane: treatment i (from 0) is
[1 - i/k - share, 1 - i/k). The control is every point no treatment takes. So growing a treatment's share (a rollout
from 5 % to 25 %) only moves control customers into it: its own customers stay, and no other treatment's move
(tests/serving/test_parts.py). A share is at most 1/k (params checks it). With one treatment this is the cut at
1 - share. Changing the salt reshuffles everyone.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fraud_detection.serving.params import ABParams

SCALE = float(2**64)


@dataclass(frozen=True)
class ABRouter:
    salt: str
    variants: tuple[str, ...]  # the control first, then the treatments
    lanes: tuple[tuple[float, float], ...]  # each treatment's [low, high) of the unit interval

    @classmethod
    def from_params(cls, params: ABParams) -> ABRouter:
        """`serve.ab`: the salt, and the variants' shares (checked: summing to 1, a treatment's at most 1/k)."""
        control, *treatments = params.variants
        return cls(params.salt, (control, *treatments), lanes(params.variants))

    def point(self, customer_id: int) -> float:
        return _point(self.salt, customer_id)

    def variant(self, customer_id: int) -> str:
        point = self.point(customer_id)
        for name, (low, high) in zip(self.variants[1:], self.lanes, strict=True):
            if low <= point < high:
                return name
        return self.variants[0]


def lanes(shares: dict[str, float]) -> tuple[tuple[float, float], ...]:
    """Each treatment's [low, high): the top `share` of its lane (the treatments after the first, the control)."""
    treatments = list(shares.values())[1:]
    width = 1 / len(treatments) if treatments else 1.0
    return tuple((1 - i * width - share, 1 - i * width) for i, share in enumerate(treatments))


@functools.lru_cache(maxsize=1 << 20)  # customers come back: a hash costs about 1.5 us
def _point(salt: str, customer_id: int) -> float:
    digest = hashlib.blake2b(f"{salt}:{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / SCALE
