"""The A/B analysis of the served variants on the labelled predictions (`fraud-detection experiment analyze`).

The customer is the unit of randomisation, so every metric's uncertainty is over customers: a ratio of per-customer
sums by the delta method, or a customer-clustered bootstrap for average precision and the latency p99. The first
variant of the design's shares is the control; each other variant is compared with it on every metric, with a
fixed-horizon test, an always-valid one (mSPRT: safe to look at every day) and Holm's adjustment of the always-valid
p-values across the metrics of that comparison. The outcome metrics read only the matured rows (older than the label
delay at `as_of`) whose label is known.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from fraud_detection.experiments.params import SHARE_TOLERANCE
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
    quantile_statistic,
    ratio,
    srm,
)
from fraud_detection.feedback.outcomes import FLAGGED
from fraud_detection.serving.decision import RULES_VERSION

COLUMNS = ("tx_datetime", "customer_id", "tx_amount", "role", "variant", "fraud_probability", "decision",
           "latency_ms", "degraded", "tx_fraud")  # fmt: skip  # model_version is optional (no fallback without it)
METRICS = {  # name: (kind, which direction is better)
    "fraud_amount_recall": ("outcome", "higher"),
    "false_decline_rate": ("outcome", "lower"),
    "review_rate": ("outcome", "lower"),
    "average_precision": ("outcome", "higher"),
    "latency_p99_ms": ("guardrail", "lower"),
    "degraded_rate": ("guardrail", "lower"),
    "fallback_rate": ("guardrail", "lower"),
}
RATIOS = {  # a ratio metric: (numerator, denominator), both per-customer sums of `indicators`
    "fraud_amount_recall": ("fraud_amount_flagged", "fraud_amount"),
    "false_decline_rate": ("genuine_declined", "genuine"),
    "review_rate": ("reviewed", "rows"),
    "degraded_rate": ("degraded", "rows"),
    "fallback_rate": ("fallback", "rows"),
}
COUNTS = ("customers", "transactions", "labelled", "matured_unlabelled")  # per variant
LATENCY_QUANTILE = 0.99


def analyze(
    predictions: pl.DataFrame,
    shares: dict[str, float],
    *,
    as_of: datetime | None = None,
    label_delay_days: int = 7,
    alpha: float = 0.05,
    relative_target_effect: float = 0.1,
    power: float = 0.8,
    srm_threshold: float = 0.001,
    bootstrap_replicates: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """The experiment's analysis (JSON-safe; None where a figure is undefined) of the served rows up to `as_of`
    (default: the latest served transaction; a naive time is UTC), the design `shares` ({variant: share}, the
    control first).

    `variants`: customers, transactions, `labelled` (the matured rows with a known label: the outcome metrics'
    rows) and `matured_unlabelled` (matured rows still without one). `comparisons`: per treatment and metric, the
    values, the difference (treatment - control), its fixed-horizon (1 - alpha) interval and p-value, the
    always-valid ones at this look (mSPRT whose tau^2 is the squared target effect, see `mixing_variance`; take the
    running minimum of `sequential_p_value` across daily looks), the Holm adjustment of the always-valid p-values
    across the metrics and `significant` (that below alpha), and `control_customers` / `treatment_customers`: the
    customers the metric's estimate rests on (those with a non-zero denominator: for `fraud_amount_recall` the
    customers with a matured fraud; every customer for the latency; an interval over a handful of them, the delta
    method's or the bootstrap's, is not to be trusted). `power`: per treatment and metric, the fixed-horizon
    test's minimum detectable effect at `power` now, the target effect (`relative_target_effect` times the
    control's value) and the treatment's customers needed to detect it (the control growing in proportion).
    Raises ValueError on missing columns, invalid shares, a served variant not in the shares or a control without
    rows.
    """
    _check_columns(predictions)
    _check_shares(shares)
    served = predictions.filter(pl.col("role") == "served").with_columns(utc_column(predictions.schema))
    as_of = utc(as_of) if as_of is not None else served["tx_datetime"].max()
    served = served.filter(pl.col("tx_datetime") <= as_of) if as_of is not None else served
    _check_variants(served, shares, as_of)
    rows = served.select("customer_id", "variant", "fraud_probability", "tx_fraud", "latency_ms",
                         **indicators(served.columns, as_of - timedelta(days=label_delay_days)))  # fmt: skip
    arms = {name: _arm(rows.filter(pl.col("variant") == name), bootstrap_replicates, np.random.default_rng([seed, i]))
            for i, name in enumerate(shares)}  # fmt: skip
    control, *treatments = shares
    return {
        "as_of": as_of.isoformat(),
        "control": control,
        "alpha": alpha,
        "variants": {name: {key: arm[key] for key in COUNTS} for name, arm in arms.items()},
        "srm": srm({name: arm["customers"] for name, arm in arms.items()}, shares, srm_threshold),
        "comparisons": [
            row for t in treatments for row in _comparisons(control, t, arms, alpha, relative_target_effect)
        ],
        "power": {t: _power(arms[control], arms[t], alpha, power, relative_target_effect) for t in treatments},
    }


def indicators(columns: list[str], matured_until: datetime) -> dict[str, pl.Expr]:
    """Per row, what the metrics sum per customer (the outcome ones on the matured rows with a known label)."""
    known = pl.col("tx_fraud").is_not_null()
    outcome = (pl.col("tx_datetime") <= matured_until) & known
    fraud, genuine = outcome & (pl.col("tx_fraud") == 1), outcome & (pl.col("tx_fraud") == 0)
    decision, amount = pl.col("decision"), pl.col("tx_amount")
    fallback = pl.col("model_version") == RULES_VERSION if "model_version" in columns else pl.lit(False)
    return {
        "outcome": outcome,
        "rows": pl.lit(1, dtype=pl.Int64),
        "reviewed": decision == "review",
        "degraded": pl.col("degraded").fill_null(False),
        "fallback": fallback.fill_null(False),
        "matured_unlabelled": (pl.col("tx_datetime") <= matured_until) & ~known,
        "fraud_amount": pl.when(fraud).then(amount).otherwise(0.0),
        "fraud_amount_flagged": pl.when(fraud & decision.is_in(FLAGGED)).then(amount).otherwise(0.0),
        "genuine": genuine,
        "genuine_declined": genuine & (decision == "decline"),
    }


def _arm(rows: pl.DataFrame, replicates: int, rng: np.random.Generator) -> dict[str, Any]:
    """One variant's counts and its metrics' estimates (`Estimate` per metric)."""
    codes = (rows["customer_id"].rank("dense").to_numpy() - 1).astype(np.int64)  # each row's customer, from 0
    customers = int(codes.max()) + 1 if len(codes) else 0
    per_customer = {name: np.bincount(codes, weights=rows[name].cast(pl.Float64).to_numpy(), minlength=customers)
                    for name in {name for pair in RATIOS.values() for name in pair}}  # fmt: skip
    estimates = {metric: ratio(per_customer[numerator], per_customer[denominator])
                 for metric, (numerator, denominator) in RATIOS.items()}  # fmt: skip
    outcome = rows["outcome"].to_numpy()
    frauds = np.bincount(codes[outcome], weights=(rows["tx_fraud"].to_numpy()[outcome] == 1), minlength=customers)
    informative = {metric: int(np.count_nonzero(per_customer[denominator]))
                   for metric, (_, denominator) in RATIOS.items()}  # fmt: skip
    informative |= {"average_precision": int(np.count_nonzero(frauds)), "latency_p99_ms": customers}
    ranking = average_precision_statistic(rows["fraud_probability"].to_numpy()[outcome],
                                          rows["tx_fraud"].to_numpy()[outcome], codes[outcome])  # fmt: skip
    latency = quantile_statistic(rows["latency_ms"].to_numpy(), codes, customers, LATENCY_QUANTILE)
    both = clustered_bootstrap(lambda weights: (ranking(weights), latency(weights)), customers, replicates, rng)
    estimates |= {"average_precision": Estimate(both.value[0], both.variance[0]),
                  "latency_p99_ms": Estimate(both.value[1], both.variance[1])}  # fmt: skip
    return {"customers": customers, "transactions": rows.height, "labelled": int(outcome.sum()),
            "matured_unlabelled": int(rows["matured_unlabelled"].sum()), "estimates": estimates,
            "informative": informative}  # fmt: skip


def _stacked(arm: dict[str, Any]) -> Estimate:
    """An arm's estimates as arrays in the order of `METRICS`."""
    estimates = [arm["estimates"][metric] for metric in METRICS]
    return Estimate(np.array([e.value for e in estimates], float), np.array([e.variance for e in estimates], float))


def _comparisons(
    control: str, treatment: str, arms: dict[str, dict], alpha: float, relative_target_effect: float
) -> list[dict[str, Any]]:
    """One row per metric of `treatment` against `control` (see `analyze`)."""
    c, t = _stacked(arms[control]), _stacked(arms[treatment])
    contrast = compare(t, c, alpha)
    variance = contrast.se**2
    tau2 = mixing_variance(c.value, relative_target_effect, variance)
    sequential = msprt_p_value(contrast.difference, variance, tau2)
    sequential_low, sequential_high = confidence_sequence(contrast.difference, variance, tau2, alpha)
    adjusted = holm(sequential)
    return [
        {"metric": metric, "kind": kind, "better": better, "control": control, "treatment": treatment,
         "control_value": json_number(c.value[i]), "treatment_value": json_number(t.value[i]),
         "difference": json_number(contrast.difference[i]), "ci_low": json_number(contrast.ci_low[i]),
         "ci_high": json_number(contrast.ci_high[i]), "p_value": json_number(contrast.p_value[i]),
         "sequential_p_value": json_number(sequential[i]), "sequential_ci_low": json_number(sequential_low[i]),
         "sequential_ci_high": json_number(sequential_high[i]), "p_value_holm": json_number(adjusted[i]),
         "significant": bool(adjusted[i] < alpha),
         "control_customers": arms[control]["informative"][metric],
         "treatment_customers": arms[treatment]["informative"][metric]}
        for i, (metric, (kind, better)) in enumerate(METRICS.items())
    ]  # fmt: skip


def _power(
    control: dict[str, Any], treatment: dict[str, Any], alpha: float, power: float, relative_target_effect: float
) -> dict[str, dict[str, Any]]:
    """Per metric: the minimum detectable effect now, the target effect and the treatment's customers needed."""
    c = _stacked(control)
    mde = minimum_detectable_effect(compare(_stacked(treatment), c, alpha).se, alpha, power)
    target = relative_target_effect * np.abs(c.value)
    needed = customers_needed(treatment["customers"], mde, target)
    return {metric: {"mde": json_number(mde[i]), "target_effect": json_number(target[i]),
                     "customers_needed_per_arm": int(needed[i]) if np.isfinite(needed[i]) else None}
            for i, metric in enumerate(METRICS)}  # fmt: skip


def _check_columns(predictions: pl.DataFrame) -> None:
    missing = [name for name in COLUMNS if name not in predictions.columns]
    if missing:
        raise ValueError(f"the predictions lack the columns {missing}; expected the labelled predictions' columns "
                         f"{list(COLUMNS)} (model_version optional)")  # fmt: skip


def _check_shares(shares: dict[str, float]) -> None:
    if len(shares) < 2:
        raise ValueError(f"shares {shares} name {len(shares)} variant(s); expected the control first and at least "
                         "one treatment")  # fmt: skip
    for name, share in shares.items():
        if not 0 < share <= 1:
            raise ValueError(f"shares[{name!r}] is {share}; expected a share in (0, 1]")
    total = sum(shares.values())
    if abs(total - 1) > SHARE_TOLERANCE:
        raise ValueError(f"the shares {shares} sum to {total}; expected 1 (within {SHARE_TOLERANCE})")


def _check_variants(served: pl.DataFrame, shares: dict[str, float], as_of: datetime | None) -> None:
    counts = dict(served.group_by("variant").len().iter_rows())
    unknown = {name: n for name, n in counts.items() if name not in shares}
    if unknown:
        raise ValueError(f"the served rows hold the variant(s) {unknown} (rows each), not in shares {list(shares)}; "
                         "expected every served variant in the shares")  # fmt: skip
    control = next(iter(shares))
    if not counts.get(control):
        raise ValueError(f"the control variant {control!r} (the first in shares) has no served rows up to as_of "
                         f"{as_of}; expected the control to have been served")  # fmt: skip


def utc_column(schema: pl.Schema) -> pl.Expr:
    """tx_datetime in UTC (a naive one read as UTC)."""
    kind, column = schema["tx_datetime"], pl.col("tx_datetime")
    if not isinstance(kind, pl.Datetime):
        raise ValueError(f"tx_datetime is of type {kind}; expected a datetime (UTC)")
    return column.dt.replace_time_zone("UTC") if kind.time_zone is None else column.dt.convert_time_zone("UTC")


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def json_number(value: float) -> float | None:
    """A JSON-safe float: None for an undefined (NaN) or infinite one."""
    return float(value) if np.isfinite(value) else None
