"""Nodes of the `experiment` stage: the A/B analysis of the served variants on the labelled predictions
(reports/experiment.json) and its page (reports/experiments/<name>.html). See fraud_detection.experiments."""

from __future__ import annotations

import logging
from typing import Any

import polars as pl

from fraud_detection.experiments.analysis import analyze
from fraud_detection.experiments.page import experiment_page
from fraud_detection.experiments.params import ExperimentParams
from fraud_detection.experiments.shadow import shadow_report
from fraud_detection.serving.params import ABParams

log = logging.getLogger(__name__)


def analyze_experiment(labelled_predictions: pl.DataFrame, experiment: ExperimentParams, ab: ABParams,
                       label_delay_days: int) -> tuple[dict[str, Any], dict[str, str]]:  # fmt: skip
    """The report and the page of the experiment whose design is `experiment.shares` (else `serve.ab.variants`)."""
    shares = dict(experiment.shares or ab.variants)
    report = experiment_report(labelled_predictions, shares, experiment, label_delay_days)
    log.info("experiment %s: %s", experiment.name, report.get("status") or f"{len(report['comparisons'])} comparisons")
    return report, {f"{experiment.name}.html": experiment_page(experiment.name, report, arrivals(labelled_predictions))}


def experiment_report(predictions: pl.DataFrame, shares: dict[str, float], experiment: ExperimentParams,
                      label_delay_days: int) -> dict[str, Any]:  # fmt: skip
    """`analyze`'s report with each variant's design share, and the shadow's report (`shadow`, None without a
    shadow); with no served prediction or a single variant, the counts and a `status` that says why no variant is
    compared."""
    shadow = shadow_report(predictions, label_delay_days=label_delay_days, alpha=experiment.alpha,
                           relative_target_effect=experiment.relative_target_effect,
                           bootstrap_replicates=experiment.bootstrap_replicates)  # fmt: skip
    served = predictions.filter(pl.col("role") == "served")
    if served.is_empty() or len(shares) < 2:
        why = "no served predictions yet" if served.is_empty() else f"one variant ({next(iter(shares))}): no A/B"
        return {"status": why, "control": next(iter(shares)), "variants": _counts(served, shares), "srm": None,
                "comparisons": [], "power": {}, "shadow": shadow}  # fmt: skip
    report = analyze(predictions, shares, label_delay_days=label_delay_days, alpha=experiment.alpha,
                     relative_target_effect=experiment.relative_target_effect,
                     srm_threshold=experiment.srm_threshold,
                     bootstrap_replicates=experiment.bootstrap_replicates)  # fmt: skip
    for name, variant in report["variants"].items():
        variant["share"] = shares[name]
    return report | {"shadow": shadow}


def arrivals(predictions: pl.DataFrame) -> pl.DataFrame:
    """Per day and variant, the customers first served that day."""
    first = (
        predictions.filter(pl.col("role") == "served")
        .group_by("customer_id", "variant")
        .agg(day=pl.col("tx_datetime").min().dt.date())
    )
    return first.group_by("day", "variant").agg(customers=pl.len()).sort("day", "variant")


def _counts(served: pl.DataFrame, shares: dict[str, float]) -> dict[str, dict[str, Any]]:
    counts = {}
    for name, share in shares.items():
        rows = served.filter(pl.col("variant") == name)
        counts[name] = {"share": share, "customers": rows["customer_id"].n_unique(), "transactions": rows.height,
                        "labelled": int(rows["tx_fraud"].is_not_null().sum())}  # fmt: skip
    return counts
