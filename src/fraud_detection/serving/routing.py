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
from typing import Any

SCALE = float(2**64)
TOLERANCE = 1e-9


@dataclass(frozen=True)
class ABRouter:
    salt: str
    variants: tuple[str, ...]
    cuts: tuple[float, ...]  # cumulative shares, the last one 1

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> ABRouter:
        """`params`: {salt: str, variants: {name: share, ...}} with shares in [0, 1] summing to 1."""
        shares = {str(name): float(share) for name, share in params["variants"].items()}
        if not shares or any(not 0 <= s <= 1 for s in shares.values()) or abs(sum(shares.values()) - 1) > TOLERANCE:
            raise ValueError(f"serve.ab.variants={shares}; expected shares between 0 and 1 that sum to 1")
        cuts = list(accumulate(shares.values()))
        cuts[-1] = 1.0
        return cls(str(params["salt"]), tuple(shares), tuple(cuts))

    def point(self, customer_id: int) -> float:
        return _point(self.salt, customer_id)

    def variant(self, customer_id: int) -> str:
        return self.variants[min(bisect_right(self.cuts, self.point(customer_id)), len(self.variants) - 1)]


@functools.lru_cache(maxsize=1 << 20)  # customers come back: a hash costs about 1.5 us
def _point(salt: str, customer_id: int) -> float:
    digest = hashlib.blake2b(f"{salt}:{customer_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / SCALE
