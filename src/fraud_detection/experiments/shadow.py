"""The shadow model against the served one, on the same transactions (`shadow_report`).

With `serve.shadow` set, the service scores every served transaction again with the shadow model and logs that as
a `shadow` row of the same transaction_id (never returned; a shadow that fails or falls behind logs nothing). The
pairs are those transactions: the two models decided on the same rows, so every difference is paired, and its
uncertainty is over customers (a customer's transactions are correlated): the delta method on the per-customer
linearised difference for the ratio metrics, a Poisson bootstrap over customers with the same weights for both
models for average precision. The metrics are the A/B analysis's (`analysis.py`): the outcome ones read only the
matured pairs (older than the label delay at `as_of`) whose label is known.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from fraud_detection.experiments.analysis import RATIOS, indicators, json_number, utc, utc_column
from fraud_detection.experiments.statistics import (
    Estimate,
    average_precision_statistic,
    clustered_bootstrap,
    confidence_sequence,
    mixing_variance,
    paired_compare,
    paired_ratio_difference,
    ratio,
)

COLUMNS = ("transaction_id", "tx_datetime", "customer_id", "tx_amount", "role", "model_version", "fraud_probability",
           "decision", "latency_ms", "tx_fraud")  # fmt: skip
METRICS = ("fraud_amount_recall", "false_decline_rate", "review_rate", "average_precision")
SCORED = ("model_version", "fraud_probability", "decision", "latency_ms")  # what the shadow row adds to a pair
INDICATORS = ("outcome", "rows", "reviewed", "fraud_amount", "fraud_amount_flagged", "genuine", "genuine_declined")
DECISIONS = ("approve", "review", "decline")  # the flips' order (any other decision after these, by name)
QUANTILES = {"p50": 0.5, "p99": 0.99}
SHADOW = "_shadow"  # the suffix of the shadow's columns in a pair


def shadow_report(
    predictions: pl.DataFrame,
    *,
    as_of: datetime | None = None,
    label_delay_days: int = 7,
    alpha: float = 0.05,
    relative_target_effect: float = 0.1,
    bootstrap_replicates: int = 200,
    seed: int = 0,
) -> dict[str, Any] | None:
    """The shadow against the served model (JSON-safe; None where a figure is undefined) on the served rows up to
    `as_of` (default: the latest served transaction; a naive time is UTC) paired with the shadow's row of the same
    transaction; None when the table holds no shadow row.

    `served_versions` / `shadow_versions`: the model versions in the pairs. `paired`: the pairs;
    `served_without_shadow`: the served rows, from the first one the shadow scored, without a shadow answer
    (failed, dropped or not yet scored; a shadow row without a score or decision counts as none).
    `decision_agreement`: the share of pairs with the same decision; `score_correlation`: Pearson's and Spearman's
    of the two scores. `flips`: per ordered pair of different decisions (the served one `from`, the shadow's `to`)
    that occurs, its transactions and, of its matured labelled ones, the frauds, their amount and the genuine ones.
    `labelled`: the matured pairs with a known label (the outcome metrics' rows). `metrics`: per metric both
    values, the difference (shadow - served), its paired (1 - alpha) interval and p-value, the customers it rests
    on (`customers`: with a non-zero denominator, e.g. a matured fraud for the recall), and its always-valid
    interval (the mSPRT's confidence sequence, tau^2 the squared `relative_target_effect` of the served value: safe
    to look at every day, as the rollout's shadow step does). `latency`: the p50 and p99 of either model's
    latency on the pairs. Raises ValueError on missing columns or a tx_datetime that is no datetime.
    """
    _check_columns(predictions)
    rows = predictions.with_columns(utc_column(predictions.schema))
    shadow = rows.filter(pl.col("role") == "shadow")
    if shadow.is_empty():
        return None
    served = rows.filter(pl.col("role") == "served")
    as_of = utc(as_of) if as_of is not None else served["tx_datetime"].max()
    served = served.filter(pl.col("tx_datetime") <= as_of) if as_of is not None else served
    pairs = _pairs(served, shadow)
    matured_until = as_of - timedelta(days=label_delay_days) if as_of is not None else datetime.min.replace(tzinfo=UTC)
    served_rows = _outcomes(pairs, "decision", matured_until)
    shadow_rows = _outcomes(pairs, "decision" + SHADOW, matured_until)
    return {
        "served_versions": _versions(pairs["model_version"]),
        "shadow_versions": _versions(pairs["model_version" + SHADOW]),
        "paired": pairs.height,
        "labelled": int(served_rows["outcome"].sum()),
        "served_without_shadow": _since(served, shadow)["transaction_id"].n_unique() - pairs.height,
        "decision_agreement": json_number(_mean(pairs["decision"] == pairs["decision" + SHADOW])),
        "score_correlation": _correlations(pairs["fraud_probability"], pairs["fraud_probability" + SHADOW]),
        "flips": _flips(pairs, served_rows),
        "metrics": _metrics(pairs, served_rows, shadow_rows, alpha, relative_target_effect, bootstrap_replicates,
                            seed),
        "latency": {f"{model}_{name}_ms": _quantile(pairs["latency_ms" + suffix], q)
                    for model, suffix in (("served", ""), ("shadow", SHADOW)) for name, q in QUANTILES.items()},
    }  # fmt: skip


def _since(served: pl.DataFrame, shadow: pl.DataFrame) -> pl.DataFrame:
    """The served rows from the first transaction the shadow scored on (before it, no shadow was configured)."""
    return served.filter(pl.col("tx_datetime") >= shadow["tx_datetime"].min())


def _pairs(served: pl.DataFrame, shadow: pl.DataFrame) -> pl.DataFrame:
    """The served rows that have a shadow answer, with the shadow's `SCORED` columns (suffixed `SHADOW`); one pair
    per transaction (the first row of each role)."""
    answered = shadow.filter(pl.col("fraud_probability").is_not_null() & pl.col("decision").is_not_null())
    answers = answered.unique("transaction_id", keep="first", maintain_order=True).select(
        "transaction_id", *(pl.col(name).alias(name + SHADOW) for name in SCORED)
    )
    first = served.unique("transaction_id", keep="first", maintain_order=True)
    return first.join(answers, on="transaction_id", how="inner", maintain_order="left")


def _outcomes(pairs: pl.DataFrame, decision: str, matured_until: datetime) -> pl.DataFrame:
    """Per pair, what the metrics sum per customer with the decision of one model (the `decision` column), as the
    A/B analysis defines them."""
    summed = indicators(pairs.columns, matured_until)
    return pairs.with_columns(pl.col(decision).alias("decision")).select(**{name: summed[name] for name in INDICATORS})


def _metrics(
    pairs: pl.DataFrame, served: pl.DataFrame, shadow: pl.DataFrame, alpha: float, relative_target_effect: float,
    replicates: int, seed: int,
) -> list[dict[str, Any]]:  # fmt: skip
    """One row per metric of `METRICS`: both models' values and the paired difference (shadow - served)."""
    codes = (pairs["customer_id"].rank("dense").to_numpy() - 1).astype(np.int64)  # each pair's customer, from 0
    customers = int(codes.max()) + 1 if len(codes) else 0

    def sums(rows: pl.DataFrame, name: str) -> np.ndarray:
        return np.bincount(codes, weights=rows[name].cast(pl.Float64).to_numpy(), minlength=customers)

    values, differences, informative = {}, {}, {}
    for metric in METRICS[:-1]:
        numerator, denominator = RATIOS[metric]
        y_served, y_shadow, x = sums(served, numerator), sums(shadow, numerator), sums(served, denominator)
        values[metric] = (ratio(y_served, x).value, ratio(y_shadow, x).value)
        differences[metric] = paired_ratio_difference(y_shadow, y_served, x)
        informative[metric] = int(np.count_nonzero(x))
    outcome = served["outcome"].to_numpy()
    labels, owners = pairs["tx_fraud"].to_numpy()[outcome], codes[outcome]
    informative["average_precision"] = int(np.unique(owners[labels == 1]).size)
    ranking = [average_precision_statistic(pairs[column].to_numpy()[outcome], labels, owners)
               for column in ("fraud_probability", "fraud_probability" + SHADOW)]  # fmt: skip
    both = clustered_bootstrap(_paired(*ranking), customers, replicates, np.random.default_rng(seed))
    values["average_precision"] = (both.value[0], both.value[1])
    differences["average_precision"] = Estimate(both.value[2], both.variance[2])
    return [_metric_row(metric, *values[metric], differences[metric], alpha, relative_target_effect)
            | {"customers": informative[metric]} for metric in METRICS]  # fmt: skip


def _paired(
    served: Callable[[np.ndarray], float], shadow: Callable[[np.ndarray], float]
) -> Callable[[np.ndarray], tuple[float, float, float]]:
    """Both models' statistic and its difference (shadow - served) under the same customers' weights."""

    def statistic(customer_weights: np.ndarray) -> tuple[float, float, float]:
        served_value, shadow_value = served(customer_weights), shadow(customer_weights)
        return served_value, shadow_value, shadow_value - served_value

    return statistic


def _metric_row(
    metric: str, served: float, shadow: float, difference: Estimate, alpha: float, relative_target_effect: float
) -> dict[str, Any]:
    contrast = paired_compare(difference, alpha)
    tau2 = mixing_variance(served, relative_target_effect, difference.variance)
    sequential_low, sequential_high = confidence_sequence(difference.value, difference.variance, tau2, alpha)
    return {"metric": metric, "served_value": json_number(served), "shadow_value": json_number(shadow),
            "difference": json_number(contrast.difference), "ci_low": json_number(contrast.ci_low),
            "ci_high": json_number(contrast.ci_high), "p_value": json_number(contrast.p_value),
            "sequential_ci_low": json_number(sequential_low),
            "sequential_ci_high": json_number(sequential_high)}  # fmt: skip


def _flips(pairs: pl.DataFrame, served: pl.DataFrame) -> list[dict[str, Any]]:
    """Per ordered pair of different decisions (served -> shadow): its transactions and, of the matured labelled
    ones, the frauds, their amount and the genuine ones."""
    decisions = pairs.select(pl.col("decision").alias("from"), pl.col("decision" + SHADOW).alias("to"), "tx_fraud")
    counts = {
        "transactions": pl.len(),
        "frauds": (pl.col("outcome") & (pl.col("tx_fraud") == 1)).sum(),
        "fraud_amount": pl.col("fraud_amount").sum(),
        "genuine": pl.col("genuine").sum(),
    }
    flipped = served.hstack(decisions).filter(pl.col("from") != pl.col("to")).group_by("from", "to").agg(**counts)
    order = {name: i for i, name in enumerate(DECISIONS)}
    rows = flipped.to_dicts()
    rows.sort(key=lambda row: (order.get(row["from"], len(order)), row["from"], order.get(row["to"], len(order)),
                               row["to"]))  # fmt: skip
    return [{"from": row["from"], "to": row["to"], "transactions": int(row["transactions"]),
             "frauds": int(row["frauds"]), "fraud_amount": float(row["fraud_amount"]), "genuine": int(row["genuine"])}
            for row in rows]  # fmt: skip


def _correlations(served: pl.Series, shadow: pl.Series) -> dict[str, float | None]:
    """Pearson's and Spearman's correlation of the two scores (Spearman's: Pearson's of their average ranks)."""
    a, b = served.cast(pl.Float64).to_numpy(), shadow.cast(pl.Float64).to_numpy()
    return {"pearson": _pearson(a, b), "spearman": _pearson(stats.rankdata(a), stats.rankdata(b))}


def _pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 2:
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = a - a.mean(), b - b.mean()
        return json_number(float((a @ b) / np.sqrt((a @ a) * (b @ b))))


def _quantile(values: pl.Series, q: float) -> float | None:
    """The q-quantile of the known values by the inverted CDF (the A/B analysis's `weighted_quantile`)."""
    known = values.drop_nulls().cast(pl.Float64).to_numpy()
    known = known[~np.isnan(known)]
    return float(np.quantile(known, q, method="inverted_cdf")) if len(known) else None


def _mean(flags: pl.Series) -> float:
    return float(flags.mean()) if len(flags) else float("nan")


def _versions(versions: pl.Series) -> list[str]:
    return sorted(str(version) for version in versions.drop_nulls().unique())


def _check_columns(predictions: pl.DataFrame) -> None:
    missing = [name for name in COLUMNS if name not in predictions.columns]
    if missing:
        raise ValueError(f"the predictions lack the columns {missing}; expected the labelled predictions' columns "
                         f"{list(COLUMNS)}")  # fmt: skip
