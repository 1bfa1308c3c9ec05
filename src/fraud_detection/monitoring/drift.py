"""Distribution shift between a reference sample and a current one, vectorised in numpy.

PSI (population stability index): sum over bins of (c - r) * ln(c / r), where r and c are the shares of the two
samples in each bin (Siddiqi, "Credit Risk Scorecards", 2006; rules of thumb: below 0.1 stable, 0.1-0.25 some
shift, above 0.25 a major shift). The Jensen-Shannon distance (SciPy's: natural log) uses the same bins; the
Kolmogorov-Smirnov statistic is the largest gap between the two empirical CDFs, and its p-value SciPy's asymptotic
one (`kstwo.sf(D, en)`, en = round(n m / (n + m)): what `ks_2samp` uses when a sample has more than 10,000
values) up to en = 20,000, and beyond, Kolmogorov's limit `kstwobign.sf(D sqrt(en))`: SciPy's finite-n tail takes
up to half a second a call there, and the limit is within 5 % of it (relative; within 0.5 % where p > 1e-10).

Two binnings:
- `quantile` (the default): bins at the reference's quantiles (ties merge bins), empty shares floored at 1e-4.
  Robust to heavy tails: amounts doubling moves half the mass across the reference's median;
- `sturges`: Evidently 0.7's, so that the two agree exactly (a test checks it): a column with more than 20 distinct
  reference values is cut into Sturges' equal-width bins over both samples, any other into its distinct values;
  empty shares floored at 1e-4 (or the smallest share / 1e6 where that is smaller), none for Jensen-Shannon. With a
  heavy tail (scenario 3 multiplies amounts by 5) nearly every row falls into the first bin, and a doubling of
  amounts reads as PSI 0.01: why the decision uses `quantile`.

Each column is sorted once per sample; everything else is binary searches on the sorted arrays, so the cost is
two sorts per column, spread over the cores (numpy releases the GIL while it sorts).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl

EPSILON = 1e-4
CATEGORICAL_MAX_VALUES = 20  # Evidently: a numerical column with at most this many distinct values is binned by value
BINNINGS = ("quantile", "sturges")
KS_FINITE_MAX_N = 20_000  # beyond this effective sample size, the p-value from the limiting distribution
DRIFT_COLUMNS = ("column", "psi", "ks_statistic", "ks_pvalue", "js_distance", "reference_mean", "current_mean")


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI of `current` against `reference` on `bins` quantile bins of the reference."""
    r, c = _sorted_finite("values", "reference", reference), _sorted_finite("values", "current", current)
    _require_values("PSI", len(r), len(c))
    return _psi(*_quantile_shares(r, c, bins), floor=_floor_at_epsilon)


def drift_table(
    reference: Mapping[str, np.ndarray], current: Mapping[str, np.ndarray], binning: str = "quantile", bins: int = 10
) -> pl.DataFrame:
    """PSI, KS statistic and p-value, Jensen-Shannon distance and both means, for every column of `reference`
    (each must be in `current` too), one row per column in `reference`'s order. `bins`: quantile bins only."""
    missing = [name for name in reference if name not in current]
    if missing:
        raise ValueError(f"current sample lacks columns {missing}; expected every reference column {list(reference)}")
    if binning not in BINNINGS:
        raise ValueError(f"drift binning {binning!r}; expected one of {list(BINNINGS)}")
    workers = min(len(reference), os.cpu_count() or 1) or 1
    with ThreadPoolExecutor(workers) as pool:
        rows = list(pool.map(lambda n: column_drift(n, reference[n], current[n], binning, bins), reference))
    return pl.DataFrame(rows, schema=dict.fromkeys(DRIFT_COLUMNS, pl.Float64) | {"column": pl.String}, orient="row")


def column_drift(name: str, reference: np.ndarray, current: np.ndarray, binning: str, bins: int) -> tuple:
    """One row of `drift_table`."""
    r, c = _sorted_finite(name, "reference", reference), _sorted_finite(name, "current", current)
    _require_values(f"drift of {name}", len(r), len(c))
    if binning == "quantile":
        (r_share, c_share), floor = _quantile_shares(r, c, bins), _floor_at_epsilon
    else:
        (r_share, c_share), floor = _evidently_shares(r, c), _floor_like_evidently
    statistic = _ks_statistic(r, c)
    return (name, _psi(r_share, c_share, floor), statistic, _ks_pvalue(statistic, len(r), len(c)),
            _js_distance(r_share, c_share), float(r.mean()), float(c.mean()))  # fmt: skip


def _sorted_finite(name: str, sample: str, values: np.ndarray) -> np.ndarray:
    # polars sorts on every core, in about half numpy's time on one; NaN sorts last, -inf first
    values = pl.Series(np.asarray(values, dtype=np.float64)).sort().to_numpy()
    if len(values) and not (np.isfinite(values[0]) and np.isfinite(values[-1])):  # sorted: NaN and inf at the ends
        bad = int((~np.isfinite(values)).sum())
        raise ValueError(f"column {name} of the {sample} sample has {bad} non-finite values; expected finite numbers")
    return values


def _quantile_shares(r: np.ndarray, c: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Shares of each sample below the first inner quantile of the reference, between each two, above the last."""
    edges = np.unique(_quantiles_of_sorted(r, np.linspace(0, 1, bins + 1)[1:-1]))
    counts = [np.diff(np.searchsorted(x, edges, side="left"), prepend=0, append=len(x)) for x in (r, c)]
    return counts[0] / len(r), counts[1] / len(c)


def _quantiles_of_sorted(values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """`numpy.quantile(values, q)` (linear interpolation, numpy's rounding) for an already sorted array, without
    numpy's partial sort of a copy."""
    position = q * (len(values) - 1)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, len(values) - 1)
    a, b, t = values[below], values[above], position - below
    return np.where(t >= 0.5, b - (b - a) * (1 - t), a + (b - a) * t)


def _evidently_shares(r: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shares of each sample per bin: Sturges' equal-width bins over both samples (as `numpy.histogram`: each bin
    closed on the left, the last on both sides), or the distinct values when the reference has few."""
    if np.count_nonzero(np.diff(r)) + 1 > CATEGORICAL_MAX_VALUES:
        edges = np.histogram_bin_edges(np.concatenate([r, c]), bins="sturges")
        r_counts, c_counts = (_histogram_of_sorted(x, edges) for x in (r, c))
    else:
        keys = np.union1d(np.unique(r), np.unique(c))
        r_counts, c_counts = (np.diff(np.searchsorted(x, keys, side="left"), append=len(x)) for x in (r, c))
    return r_counts / len(r), c_counts / len(c)


def _histogram_of_sorted(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    at_or_above = np.searchsorted(values, edges, side="left")
    at_or_above[-1] = np.searchsorted(values, edges[-1], side="right")  # the last bin includes its right edge
    return np.diff(at_or_above)


def _psi(r: np.ndarray, c: np.ndarray, floor: Callable[[np.ndarray], np.ndarray]) -> float:
    r, c = floor(r), floor(c)
    return float(np.sum((c - r) * np.log(c / r)))


def _floor_at_epsilon(shares: np.ndarray) -> np.ndarray:
    return np.maximum(shares, EPSILON)


def _floor_like_evidently(shares: np.ndarray) -> np.ndarray:
    smallest = shares[shares > 0].min()
    return np.where(shares == 0, smallest / 1e6 if smallest <= EPSILON else EPSILON, shares)


def _js_distance(r: np.ndarray, c: np.ndarray) -> float:
    m = (r + c) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = lambda p: np.sum(np.where(p > 0, p * np.log(p / m), 0.0))  # noqa: E731
        return float(np.sqrt(max((kl(r) + kl(c)) / 2, 0.0)))


def _ks_statistic(r: np.ndarray, c: np.ndarray) -> float:
    """max |F_r - F_c|: both CDFs only step at sample values, so checking each distinct value of both samples is
    enough (features repeat values a lot: counts, rates, amounts in cents)."""
    r_values, r_cdf = _distinct_cdf(r)
    c_values, c_cdf = _distinct_cdf(c)
    at_c = _cdf_at(r_values, r_cdf, c_values) - c_cdf
    at_r = r_cdf - _cdf_at(c_values, c_cdf, r_values)
    return float(max(np.abs(at_c).max(), np.abs(at_r).max()))


def _distinct_cdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a sorted array and the empirical CDF at each."""
    last = np.flatnonzero(np.diff(values))  # the last position of each run of equal values but the final one
    ends = np.append(last, len(values) - 1)
    return values[ends], (ends + 1) / len(values)


def _cdf_at(values: np.ndarray, cdf: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The step CDF given by (`values`, `cdf`) at `points`."""
    index = np.searchsorted(values, points, side="right")
    return np.where(index > 0, cdf[np.maximum(index - 1, 0)], 0.0)


def _ks_pvalue(statistic: float, n: int, m: int) -> float:
    from scipy.stats import kstwo, kstwobign

    effective = np.round(n * m / (n + m))
    if effective > KS_FINITE_MAX_N:  # SciPy's finite-n tail takes up to 0.5 s a call there
        return float(np.clip(kstwobign.sf(statistic * np.sqrt(effective)), 0.0, 1.0))
    return float(np.clip(kstwo.sf(statistic, effective), 0.0, 1.0))


def _require_values(what: str, n: int, m: int) -> None:
    if n == 0 or m == 0:
        raise ValueError(f"{what} needs two non-empty samples; got {n} and {m} values")
