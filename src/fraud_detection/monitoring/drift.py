"""Distribution shift between a reference sample and a current one, vectorised in numpy.

PSI (population stability index): sum over bins of (c - r) * ln(c / r), with bins at the reference's quantiles
and shares floored at `EPSILON` so that an empty bin counts as a big, finite shift (the usual convention: Siddiqi,
"Credit Risk Scorecards", 2006). Rules of thumb: below 0.1 stable, 0.1-0.25 moderate, above 0.25 a major shift.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-4


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI of `current` against `reference` on `bins` quantile bins of the reference (ties merge bins)."""
    reference, current = np.asarray(reference, dtype=np.float64), np.asarray(current, dtype=np.float64)
    if len(reference) == 0 or len(current) == 0:
        raise ValueError(f"PSI needs two non-empty samples; got {len(reference)} and {len(current)} values")
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    expected = np.bincount(np.searchsorted(edges, reference, side="right"), minlength=len(edges) + 1)
    actual = np.bincount(np.searchsorted(edges, current, side="right"), minlength=len(edges) + 1)
    r = np.maximum(expected / len(reference), EPSILON)
    c = np.maximum(actual / len(current), EPSILON)
    return float(np.sum((c - r) * np.log(c / r)))
