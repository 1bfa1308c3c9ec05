"""The statistics of an A/B experiment whose unit of randomisation is the customer: the sample ratio check, ratio
metrics by the delta method, fixed-horizon and always-valid (mSPRT) tests of a difference, Holm's adjustment, power,
and a customer-clustered bootstrap for the metrics that are no ratio of sums (average precision, a latency quantile).

The functions on estimates (`ratio`, `compare`, `msprt_p_value`, `confidence_sequence`, ...) broadcast: `ratio`
reduces the last axis (the customers) and keeps the leading ones, so that many simulated experiments or looks are
computed at once. An undefined figure (no denominator, no variance) is NaN.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats


@dataclass(frozen=True)
class Estimate:
    """A metric's value in one arm and the variance of that value."""

    value: np.ndarray
    variance: np.ndarray


@dataclass(frozen=True)
class Difference:
    """Treatment minus control: its standard error, the (1 - alpha) confidence interval and the two-sided
    fixed-horizon p-value (normal)."""

    difference: np.ndarray
    se: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_value: np.ndarray


def srm(customers: dict[str, int], shares: dict[str, float], threshold: float = 0.001) -> dict:
    """The sample ratio mismatch check: Pearson's chi-square of the customers per variant against the design's
    shares (variants of `shares` only; one missing from `customers` has none); a mismatch when p < `threshold`."""
    observed = np.array([customers.get(name, 0) for name in shares], dtype=float)
    design = np.array(list(shares.values()), dtype=float)
    expected = observed.sum() * design / design.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = float(((observed - expected) ** 2 / expected).sum())
    p_value = float(stats.chi2.sf(chi2, len(shares) - 1))
    return {"chi2": chi2, "p_value": p_value, "mismatch": bool(p_value < threshold)}


def ratio(numerator: ArrayLike, denominator: ArrayLike) -> Estimate:
    """R = sum(y) / sum(x) over the customers of one arm (the last axis; y and x are each customer's sums) and its
    delta-method variance."""
    # Deng, Knoblich, Lu (2018), "Applying the delta method in metric analytics: a practical guide with novel
    # ideas", KDD: Var(R) ~ (s_y^2 - 2 R s_xy + R^2 s_x^2) / (n x_bar^2), sample (co)variances over the n customers.
    # As y_bar = R x_bar, the bracket is sum((y - R x)^2) / (n - 1), computed so (no cancellation).
    y, x = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    customers = y.shape[-1]
    total_y, total_x = y.sum(axis=-1), x.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = total_y / total_x
        squared_residuals = ((y - np.expand_dims(value, -1) * x) ** 2).sum(axis=-1)
        variance = customers * squared_residuals / ((customers - 1) * total_x**2)
    return Estimate(value, variance if customers > 1 else np.full_like(value, np.nan))


def compare(treatment: Estimate, control: Estimate, alpha: float = 0.05) -> Difference:
    """The difference of two independent arms with its fixed-horizon interval and p-value."""
    difference = treatment.value - control.value
    se = np.sqrt(treatment.variance + control.variance)
    half_width = stats.norm.ppf(1 - alpha / 2) * se
    with np.errstate(divide="ignore", invalid="ignore"):
        p_value = 2 * stats.norm.sf(np.abs(difference) / se)
    return Difference(difference, se, difference - half_width, difference + half_width, p_value)


def mixing_variance(control_value: ArrayLike, relative_effect: float, variance: ArrayLike) -> np.ndarray:
    """The mSPRT's tau^2, the variance of its normal mixture over true differences: the square of the effect worth
    detecting, (relative_effect * |control value|)^2: Johari et al. match the mixture to the effects one expects, and
    the test is most sensitive to effects of about tau. Where that effect is 0 or undefined, the difference's
    variance V itself (effects of about a standard error)."""
    target = (relative_effect * np.asarray(control_value, dtype=float)) ** 2
    return np.where(np.isfinite(target) & (target > 0), target, variance)


def msprt_p_value(difference: ArrayLike, variance: ArrayLike, tau2: ArrayLike) -> np.ndarray:
    """The always-valid p-value of a difference of normal estimates with variance V: valid at any look, however
    often one looks. Without variance, 0 for a non-zero difference and undefined for none."""
    # Johari, Pekelis, Walsh (2022), "Always valid inference: continuous monitoring of A/B tests", Operations
    # Research 70(3): the mixture likelihood ratio with a N(0, tau^2) mixture,
    # Lambda = sqrt(V / (V + tau^2)) exp(tau^2 theta^2 / (2 V (V + tau^2))), and p = min(1, 1 / Lambda).
    theta, v, tau2 = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (difference, variance, tau2)))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_lambda = 0.5 * np.log(v / (v + tau2)) + tau2 * theta**2 / (2 * v * (v + tau2))
        p_value = np.exp(-np.maximum(log_lambda, 0.0))
    return np.where(v == 0, np.where(np.abs(theta) > 0, 0.0, np.nan), p_value)


def confidence_sequence(
    difference: ArrayLike, variance: ArrayLike, tau2: ArrayLike, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """The always-valid (1 - alpha) interval: the true differences theta0 whose mSPRT p-value of
    (difference - theta0) exceeds alpha."""
    # Solving min(1, 1 / Lambda(theta - theta0)) > alpha for theta0 (Johari et al., as in `msprt_p_value`):
    # |theta - theta0| < sqrt(V (V + tau^2) / tau^2 * (2 log(1 / alpha) + log((V + tau^2) / V))).
    theta, v, tau2 = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in (difference, variance, tau2)))
    with np.errstate(divide="ignore", invalid="ignore"):
        half_width = np.sqrt(v * (v + tau2) / tau2 * (2 * np.log(1 / alpha) + np.log((v + tau2) / v)))
    half_width = np.where(v == 0, 0.0, half_width)
    return theta - half_width, theta + half_width


def running_min(p_values: ArrayLike, axis: int = -1) -> np.ndarray:
    """The always-valid p-value after each look (looks along `axis`): the smallest seen so far."""
    return np.minimum.accumulate(np.asarray(p_values, dtype=float), axis=axis)


def holm(p_values: ArrayLike) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values (monotone in the raw ones, at most 1); an undefined (NaN)
    p-value is left out of the family and stays NaN."""
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full_like(p, np.nan)
    defined = np.flatnonzero(~np.isnan(p))
    order = defined[np.argsort(p[defined], kind="stable")]
    family = len(order)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate((family - np.arange(family)) * p[order]))
    return adjusted


def minimum_detectable_effect(se: ArrayLike, alpha: float = 0.05, power: float = 0.8) -> np.ndarray:
    """The smallest true difference a two-sided level-alpha test detects with probability `power`, given the
    difference's standard error now: (z_{1 - alpha / 2} + z_power) * se."""
    return (stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * np.asarray(se, dtype=float)


def customers_needed(customers_now: ArrayLike, mde: ArrayLike, target_effect: ArrayLike) -> np.ndarray:
    """Customers an arm needs for the fixed-horizon test's minimum detectable effect to shrink to `target_effect`,
    every arm growing in proportion (the variance falls as 1 / customers): customers_now * (mde / target)^2. The
    always-valid test needs more."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.ceil(np.asarray(customers_now, dtype=float) * (np.asarray(mde) / np.asarray(target_effect)) ** 2)


def poisson_weights(customers: int, rng: np.random.Generator) -> np.ndarray:
    """One Poisson(1) weight per customer (uint8), drawn by inverse CDF from 16-bit uniforms: each probability to
    1 / 65536 (a weight above 8, probability 1e-6, is never drawn), ten times faster than `Generator.poisson`."""
    return _poisson_table()[rng.integers(0, 1 << 16, customers, dtype=np.uint16)]


@cache
def _poisson_table() -> np.ndarray:
    """The Poisson(1) value of each 16-bit uniform: the inverse of its CDF on the grid k / 65536."""
    cdf = np.cumsum([math.exp(-1) / math.factorial(k) for k in range(9)])
    return np.searchsorted(np.round(cdf * (1 << 16)), np.arange(1 << 16), side="right").astype(np.uint8)


def clustered_bootstrap(
    statistic: Callable[[np.ndarray], ArrayLike], customers: int, replicates: int, rng: np.random.Generator
) -> Estimate:
    """A statistic of the rows, given as a function of its customers' weights (one per customer): its value on the
    data (every weight 1) and its variance over `replicates` resamples that weigh each customer by a Poisson(1)
    draw, so that a customer's transactions stay together. Replicates where it is undefined are left out."""
    # The Poisson bootstrap: Hanley & MacGibbon (2006); Chamandy et al. (2012), "Estimating uncertainty for massive
    # data streams", Google.
    draws = np.array([statistic(poisson_weights(customers, rng)) for _ in range(replicates)], dtype=float)
    value = np.asarray(statistic(np.ones(customers, dtype=np.uint8)), dtype=float)
    with warnings.catch_warnings():  # a statistic undefined in every replicate has an undefined variance
        warnings.simplefilter("ignore", RuntimeWarning)
        variance = np.nanvar(draws, axis=0, ddof=1) if replicates > 1 else np.full_like(value, np.nan)
    return Estimate(value, variance)


def average_precision_statistic(
    scores: ArrayLike, labels: ArrayLike, customer_codes: ArrayLike
) -> Callable[[np.ndarray], float]:
    """The rows' average precision as a function of their customers' weights (`customer_codes`: each row's
    customer, 0 to customers - 1): sum(w y precision) / sum(w y), the rows ranked by score, highest first, the
    precision at a row sum(w y) / sum(w) over the rows scored as high or higher (scikit-learn's, ties included)."""
    scores = np.asarray(scores, dtype=float)
    ranked = np.argsort(-scores, kind="stable")
    ranked_scores, owners = scores[ranked], np.asarray(customer_codes)[ranked]
    positive_rows = np.flatnonzero(np.asarray(labels)[ranked] == 1)
    tie_ends = np.searchsorted(-ranked_scores, -ranked_scores[positive_rows], side="right") - 1
    positives_to_tie_end = np.searchsorted(positive_rows, tie_ends, side="right")
    block_ends = np.unique(tie_ends)  # the rows up to a positive's tie end, summed block by block
    block_starts, block_of_positive = np.r_[0, block_ends[:-1] + 1], np.searchsorted(block_ends, tie_ends)
    owners = owners[: block_ends[-1] + 1] if len(block_ends) else owners[:0]

    def statistic(customer_weights: np.ndarray) -> float:
        weights = customer_weights[owners]
        positive_weights = weights[positive_rows].astype(float)
        if positive_weights.sum() == 0:
            return math.nan
        flagged_weight = np.cumsum(np.add.reduceat(weights, block_starts, dtype=float))[block_of_positive]
        caught_weight = np.cumsum(positive_weights)[positives_to_tie_end - 1]
        precision = np.divide(caught_weight, flagged_weight, out=np.zeros(len(tie_ends)), where=flagged_weight > 0)
        return float((positive_weights * precision).sum() / positive_weights.sum())

    return statistic


def quantile_statistic(
    values: ArrayLike, customer_codes: ArrayLike, customers: int, q: float
) -> Callable[[np.ndarray], float]:
    """The rows' weighted q-quantile (see `weighted_quantile`) as a function of their customers' weights
    (`customer_codes`: each row's customer, 0 to `customers` - 1). An upper quantile reads only the top rows, unless
    a resample's weights put it below them."""
    values, codes = np.asarray(values, dtype=float), np.asarray(customer_codes)
    top_rows = min(len(values), 4 * math.ceil((1 - q) * len(values)) + 64)
    top = np.argpartition(-values, top_rows - 1)[:top_rows] if top_rows < len(values) else np.arange(len(values))
    top = top[np.argsort(-values[top], kind="stable")]
    top_values, top_owners = values[top], codes[top]
    rows_per_customer = np.bincount(codes, minlength=customers)

    def statistic(customer_weights: np.ndarray) -> float:
        weight_above = (1 - q) * float(customer_weights @ rows_per_customer)
        value = _quantile_from_top(top_values, customer_weights[top_owners], weight_above)
        return weighted_quantile(values, customer_weights[codes], q) if math.isnan(value) else value

    return statistic


def weighted_average_precision(scores: ArrayLike, labels: ArrayLike, weights: ArrayLike) -> float:
    """The average precision of weighted rows (see `average_precision_statistic`); NaN without weighted frauds."""
    rows = len(np.asarray(weights))
    return average_precision_statistic(scores, labels, np.arange(rows))(np.asarray(weights))


def weighted_quantile(values: ArrayLike, weights: ArrayLike, q: float) -> float:
    """The q-quantile of weighted values, 0 < q <= 1, by the inverted CDF: the smallest value whose weighted share
    of values at or below it reaches q (numpy's `inverted_cdf` with unit weights); NaN without weight."""
    values, weights = np.asarray(values, dtype=float), np.asarray(weights, dtype=float)
    descending = np.argsort(-values, kind="stable")
    return _quantile_from_top(values[descending], weights[descending], (1 - q) * weights.sum())


def _quantile_from_top(descending_values: np.ndarray, weights: np.ndarray, weight_above: float) -> float:
    """The first value, from the highest, where the weight from the top exceeds `weight_above` (the weight a
    quantile leaves above it); NaN if these rows' weight never does."""
    weight_from_top = np.cumsum(weights, dtype=float)
    if len(weight_from_top) == 0 or weight_from_top[-1] <= weight_above:
        return math.nan
    return float(descending_values[np.searchsorted(weight_from_top, weight_above, side="right")])


def paired_ratio_difference(
    treatment_numerator: ArrayLike, control_numerator: ArrayLike, denominator: ArrayLike
) -> Estimate:
    """R_t - R_c of two ratios over the same customers and the same denominator (two models deciding on the same
    transactions: each customer's numerator under either and their shared denominator, the customers on the last
    axis) and its delta-method variance. Pairing keeps the covariance of the two ratios, so the variance is far
    below the sum of theirs when the models mostly agree."""
    # Deng, Knoblich, Lu (2018), "Applying the delta method in metric analytics: a practical guide with novel
    # ideas", KDD: R = y_bar / x_bar linearises to (y_i - R x_i) / x_bar, so D = R_t - R_c linearises to
    # z_i = ((y_t,i - R_t x_i) - (y_c,i - R_c x_i)) / x_bar, of mean 0, and Var(D) ~ var(z) / n over the n customers.
    numerators = (np.asarray(treatment_numerator, dtype=float), np.asarray(control_numerator, dtype=float))
    y_t, y_c, x = np.broadcast_arrays(*numerators, np.asarray(denominator, dtype=float))
    customers = x.shape[-1]
    total_x = x.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_t, r_c = y_t.sum(axis=-1) / total_x, y_c.sum(axis=-1) / total_x
        z = (y_t - np.expand_dims(r_t, -1) * x) - (y_c - np.expand_dims(r_c, -1) * x)  # times x_bar
        variance = customers * (z**2).sum(axis=-1) / ((customers - 1) * total_x**2)
    difference = r_t - r_c
    return Estimate(difference, variance if customers > 1 else np.full_like(difference, np.nan))


def paired_compare(difference: Estimate, alpha: float = 0.05) -> Difference:
    """A paired difference (estimated at once, with its own variance: `paired_ratio_difference`, a bootstrap with
    the same weights for both sides) with its fixed-horizon interval and p-value."""
    nothing = np.zeros_like(np.asarray(difference.value, dtype=float))
    return compare(difference, Estimate(nothing, nothing), alpha)
