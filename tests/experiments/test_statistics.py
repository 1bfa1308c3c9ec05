"""The experiment statistics against references: scipy's chi-square for the sample ratio check, statsmodels' Holm,
scikit-learn's average precision and numpy's quantile for the weighted statistics; the delta method against a large
customer-clustered bootstrap; the always-valid p-value and its confidence sequence against their formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import average_precision_score
from statsmodels.stats.multitest import multipletests

from fraud_detection.experiments.statistics import (
    Estimate,
    average_precision_statistic,
    clustered_bootstrap,
    compare,
    confidence_sequence,
    customers_needed,
    holm,
    minimum_detectable_effect,
    mixing_variance,
    msprt_p_value,
    poisson_weights,
    quantile_statistic,
    ratio,
    running_min,
    srm,
    weighted_average_precision,
    weighted_quantile,
)


def _customers(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-customer sums of a ratio metric: Poisson transaction counts, flags correlated within a customer."""
    transactions = rng.poisson(rng.gamma(2.0, 3.0, n)).astype(float)
    return rng.binomial(transactions.astype(int), rng.beta(1.0, 10.0, n)).astype(float), transactions


@pytest.mark.parametrize(
    ("customers", "shares"),
    [
        ({"A": 5100, "B": 4900}, {"A": 0.5, "B": 0.5}),
        ({"A": 9000, "B": 1050}, {"A": 0.9, "B": 0.1}),
        ({"A": 3000, "B": 3100, "C": 2950}, {"A": 0.34, "B": 0.33, "C": 0.33}),
    ],
)
def test_srm_is_scipys_chi_square(customers: dict[str, int], shares: dict[str, float]) -> None:
    observed = list(customers.values())
    reference = stats.chisquare(observed, [sum(observed) * share for share in shares.values()])
    result = srm(customers, shares)
    assert result["chi2"] == pytest.approx(reference.statistic)
    assert result["p_value"] == pytest.approx(reference.pvalue)
    assert result["mismatch"] is bool(reference.pvalue < 0.001)


def test_srm_flags_an_assignment_bug_and_passes_a_balanced_split() -> None:
    assert srm({"A": 5500, "B": 4500}, {"A": 0.5, "B": 0.5})["mismatch"] is True
    assert srm({"A": 5030, "B": 4970}, {"A": 0.5, "B": 0.5})["mismatch"] is False
    assert srm({"A": 5500}, {"A": 0.5, "B": 0.5})["mismatch"] is True  # a variant never served


@pytest.mark.parametrize(
    "p_values",
    [
        [0.01, 0.04, 0.03, 0.005],
        [0.2, 0.2, 0.01, 0.5, 0.9, 0.04, 0.04],  # ties, and products above 1
        [0.0, 1.0, 0.5],
        [0.03],
    ],
)
def test_holm_is_statsmodels(p_values: list[float]) -> None:
    _, reference, _, _ = multipletests(p_values, method="holm")
    np.testing.assert_allclose(holm(p_values), reference)


def test_holm_leaves_undefined_p_values_out_of_the_family() -> None:
    _, reference, _, _ = multipletests([0.01, 0.02], method="holm")
    adjusted = holm([0.01, math.nan, 0.02])
    np.testing.assert_allclose(adjusted[[0, 2]], reference)
    assert math.isnan(adjusted[1])


def test_the_ratio_is_the_sums_ratio_with_deng_et_als_variance() -> None:
    y, x = _customers(500, np.random.default_rng(1))
    estimate = ratio(y, x)
    r, n = y.sum() / x.sum(), len(y)
    covariance = np.cov(y, x)  # sample (co)variances
    deng = (covariance[0, 0] - 2 * r * covariance[0, 1] + r**2 * covariance[1, 1]) / (n * x.mean() ** 2)
    assert estimate.value == pytest.approx(r)
    assert estimate.variance == pytest.approx(deng)


def test_the_ratio_broadcasts_over_leading_axes() -> None:
    y, x = _customers(600, np.random.default_rng(2))
    stacked = ratio(y.reshape(3, 200), x.reshape(3, 200))
    for i in range(3):
        one = ratio(y[i * 200 : (i + 1) * 200], x[i * 200 : (i + 1) * 200])
        assert (stacked.value[i], stacked.variance[i]) == pytest.approx((one.value, one.variance))


def test_the_delta_method_matches_a_large_clustered_bootstrap() -> None:
    y, x = _customers(2000, np.random.default_rng(3))
    delta = ratio(y, x)
    bootstrap = clustered_bootstrap(lambda w: (w @ y) / (w @ x), len(y), 2000, np.random.default_rng(4))
    assert bootstrap.value == pytest.approx(delta.value)
    assert math.sqrt(bootstrap.variance) == pytest.approx(math.sqrt(delta.variance), rel=0.1)


def test_an_undefined_ratio_is_nan() -> None:
    assert math.isnan(ratio([0.0, 0.0], [0.0, 0.0]).value)
    assert math.isnan(ratio([1.0], [2.0]).variance)  # one customer: no variance


def test_the_fixed_horizon_comparison() -> None:
    treatment, control = Estimate(np.array(0.12), np.array(0.0001)), Estimate(np.array(0.10), np.array(0.0003))
    contrast = compare(treatment, control, alpha=0.05)
    se = math.sqrt(0.0004)
    assert (contrast.difference, contrast.se) == pytest.approx((0.02, se))
    assert (contrast.ci_low, contrast.ci_high) == pytest.approx((0.02 - 1.959964 * se, 0.02 + 1.959964 * se))
    assert contrast.p_value == pytest.approx(2 * stats.norm.sf(0.02 / se))


def test_the_msprt_p_value_is_johari_et_als() -> None:
    theta, v, tau2 = 0.03, 0.0001, 0.0004
    likelihood_ratio = math.sqrt(v / (v + tau2)) * math.exp(tau2 * theta**2 / (2 * v * (v + tau2)))
    assert msprt_p_value(theta, v, tau2) == pytest.approx(1 / likelihood_ratio)
    assert msprt_p_value(0.0, v, tau2) == 1.0  # the ratio below 1: p capped at 1
    assert msprt_p_value(theta, v, tau2) > compare(Estimate(theta, v), Estimate(0.0, 0.0)).p_value


def test_without_variance_a_difference_is_certain_and_none_is_undefined() -> None:
    assert msprt_p_value(0.1, 0.0, 0.01) == 0.0
    assert math.isnan(msprt_p_value(0.0, 0.0, 0.01))
    assert math.isnan(msprt_p_value(math.nan, math.nan, 0.01))  # an undefined metric
    assert np.isnan(confidence_sequence(math.nan, math.nan, 0.01)).all()


def test_the_confidence_sequence_ends_where_the_p_value_reaches_alpha() -> None:
    theta, v, tau2, alpha = 0.03, 0.0001, 0.0004, 0.05
    low, high = confidence_sequence(theta, v, tau2, alpha)
    assert msprt_p_value(theta - low, v, tau2) == pytest.approx(alpha)
    assert msprt_p_value(theta - high, v, tau2) == pytest.approx(alpha)
    fixed = compare(Estimate(theta, v), Estimate(0.0, 0.0), alpha)
    assert low < fixed.ci_low < fixed.ci_high < high  # always valid costs width


def test_the_mixing_variance_is_the_target_effect_squared_or_the_variance() -> None:
    assert mixing_variance(0.2, 0.1, 1e-4) == pytest.approx(0.02**2)
    np.testing.assert_allclose(mixing_variance([0.0, math.nan], 0.1, [1e-4, 2e-4]), [1e-4, 2e-4])


def test_running_min_over_looks() -> None:
    np.testing.assert_allclose(running_min([[0.5, 0.2, 0.4, 0.1]]), [[0.5, 0.2, 0.2, 0.1]])


def test_power_mde_and_customers_needed() -> None:
    mde = minimum_detectable_effect(0.01, alpha=0.05, power=0.8)
    assert mde == pytest.approx((1.959964 + 0.841621) * 0.01)
    assert customers_needed(1000, mde, mde / 2) == 4000  # half the effect: four times the customers
    assert customers_needed(1000, mde, mde * 2) == 250


def test_poisson_weights_are_poisson_one_and_seeded() -> None:
    weights = poisson_weights(400_000, np.random.default_rng(5))
    assert weights.mean() == pytest.approx(1.0, abs=0.01)
    assert weights.var() == pytest.approx(1.0, abs=0.01)
    assert np.mean(weights == 0) == pytest.approx(math.exp(-1), abs=0.005)
    np.testing.assert_array_equal(
        poisson_weights(100, np.random.default_rng(6)), poisson_weights(100, np.random.default_rng(6))
    )


def test_the_weighted_average_precision_is_scikit_learns() -> None:
    rng = np.random.default_rng(7)
    labels = rng.random(3000) < 0.05
    scores = np.round(np.where(labels, rng.beta(4, 2, 3000), rng.beta(2, 4, 3000)), 2)  # ties
    weights = rng.poisson(1.0, 3000) + 1
    assert weighted_average_precision(scores, labels, weights) == pytest.approx(
        average_precision_score(labels, scores, sample_weight=weights)
    )
    fractional = rng.random(3000) + 0.01
    assert weighted_average_precision(scores, labels, fractional) == pytest.approx(
        average_precision_score(labels, scores, sample_weight=fractional)
    )
    assert weighted_average_precision(scores, labels, np.ones(3000)) == pytest.approx(
        average_precision_score(labels, scores)
    )
    assert math.isnan(weighted_average_precision(scores, np.zeros(3000), weights))


def test_the_average_precision_of_customers_weights_is_that_of_their_rows() -> None:
    rng = np.random.default_rng(8)
    codes = rng.integers(0, 300, 3000)
    labels, scores = rng.random(3000) < 0.1, rng.random(3000)
    customer_weights = poisson_weights(300, rng)
    statistic = average_precision_statistic(scores, labels, codes)
    assert statistic(customer_weights) == pytest.approx(
        weighted_average_precision(scores, labels, customer_weights[codes])
    )


def test_the_weighted_quantile_is_numpys_inverted_cdf() -> None:
    rng = np.random.default_rng(9)
    values = np.round(rng.gamma(4, 0.5, 1001), 1)  # ties
    for q in (0.5, 0.9, 0.99, 1.0):
        assert weighted_quantile(values, np.ones(1001), q) == np.quantile(values, q, method="inverted_cdf")
    weights = rng.integers(0, 4, 1001)
    assert weighted_quantile(values, weights, 0.99) == np.quantile(
        np.repeat(values, weights), 0.99, method="inverted_cdf"
    )
    assert math.isnan(weighted_quantile(values, np.zeros(1001), 0.99))


def test_the_quantile_of_customers_weights_reads_the_top_rows_unless_they_weigh_too_little() -> None:
    rng = np.random.default_rng(10)
    codes = rng.integers(0, 500, 20_000)
    values = rng.gamma(4, 0.5, 20_000)
    statistic = quantile_statistic(values, codes, 500, 0.99)
    for _ in range(20):
        weights = poisson_weights(500, rng)
        assert statistic(weights) == weighted_quantile(values, weights[codes], 0.99)
    heavy_tail = np.unique(codes[values >= np.quantile(values, 0.9)])
    weights = np.ones(500, dtype=np.uint8)
    weights[heavy_tail] = 0  # the top rows weigh nothing: the quantile lies below them
    assert statistic(weights) == weighted_quantile(values, weights[codes], 0.99)


def test_the_clustered_bootstrap_is_seeded_and_gives_the_value_on_the_data() -> None:
    y, x = _customers(300, np.random.default_rng(11))

    def statistic(w: np.ndarray) -> tuple[float, float]:
        return (w @ y) / (w @ x), float(w @ x)

    first = clustered_bootstrap(statistic, 300, 50, np.random.default_rng(12))
    again = clustered_bootstrap(statistic, 300, 50, np.random.default_rng(12))
    np.testing.assert_array_equal(first.variance, again.variance)
    np.testing.assert_allclose(first.value, [y.sum() / x.sum(), x.sum()])
