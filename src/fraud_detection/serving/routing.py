"""A/B assignment: a customer always gets the same variant.

The customer id and `serve.ab.salt` are hashed (BLAKE2b, 8 bytes) to a point in [0, 1), and the variants' shares
(`serve.ab.variants`, in the order given) cut that interval. Changing the salt reshuffles everyone; changing a share
moves only the customers between the old and the new cut.
"""

from __future__ import annotations

import functools
import hashlib
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fraud_detection.serving.params import ABParams

SCALE = float(2**64)


@dataclass(frozen=True)
class ABRouter:
    salt: str
    variants: tuple[str, ...]
    cuts: tuple[float, ...]  # cumulative shares, the last one 1

    @classmethod
    def from_params(cls, params: ABParams) -> ABRouter:
        """`serve.ab`: the salt, and the variants' shares (checked: in [0, 1], summing to 1)."""
        cuts = list(accumulate(params.variants.values()))
        cuts[-1] = 1.0
        return cls(params.salt, tuple(params.variants), tuple(cuts))

    def point(self, customer_id: int) -> float:
        return _point(self.salt, customer_id)

    def variant(self, customer_id: int) -> str:
        return self.variants[min(bisect_right(self.cuts, self.point(customer_id)), len(self.variants) - 1)]


@functools.lru_cache(maxsize=1 << 20)  # customers come back: a hash costs about 1.5 us
def _point(salt: str, customer_id: int) -> float:
    digest = hashlib.blake2b(f"{salt}:{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / SCALE
