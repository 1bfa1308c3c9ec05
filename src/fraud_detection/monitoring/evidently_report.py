"""Evidently 0.7 reports: data and prediction drift (the features and the score), and model quality on the labels
known by now. Evidently takes pandas and is slow on big samples (its drift preset took 210 s on 1 M rows x 50
columns here), so each sample is cut to `max_rows` rows drawn at random (seeded) before it sees them; our own drift
table (monitoring.drift) always uses every row.

`quantile_psi`, registered as an Evidently drift method, is our PSI on the reference's quantile bins: with it the
report shows the statistic the decision uses (Evidently's own `psi` bins by equal widths; see monitoring.drift)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import polars as pl

from fraud_detection.monitoring.drift import psi

TARGET = "tx_fraud"
QUANTILE_PSI = "quantile_psi"


def sample(frame: pl.DataFrame, max_rows: int, seed: int) -> pl.DataFrame:
    """At most `max_rows` rows, drawn without replacement, in their original order."""
    if len(frame) <= max_rows:
        return frame
    keep = np.sort(np.random.default_rng(seed).choice(len(frame), size=max_rows, replace=False))
    return frame[keep]


def drift_report(
    reference: pl.DataFrame, current: pl.DataFrame, columns: list[str], method: str, bins: int = 10
) -> Any:
    """Evidently's DataDriftPreset over `columns` (every one numerical), each tested with `method` (an Evidently
    method or `quantile_psi`, on `bins` quantile bins)."""
    from evidently import DataDefinition, Report
    from evidently.presets import DataDriftPreset

    if method == QUANTILE_PSI:
        register_quantile_psi(bins)
    definition = DataDefinition(numerical_columns=columns)
    report = Report([DataDriftPreset(columns=columns, num_method=method)], include_tests=False)
    return report.run(current_data=_dataset(current, columns, definition),
                      reference_data=_dataset(reference, columns, definition))  # fmt: skip


def quality_report(reference: pl.DataFrame, current: pl.DataFrame, score: str) -> Any:
    """Evidently's ClassificationPreset: `score` (a fraud probability) against the labels, on both samples."""
    from evidently import BinaryClassification, DataDefinition, Report
    from evidently.presets import ClassificationPreset

    definition = DataDefinition(
        numerical_columns=[score],
        categorical_columns=[TARGET],
        classification=[BinaryClassification(target=TARGET, prediction_probas=score, pos_label=1)],
    )
    columns = [score, TARGET]
    return Report([ClassificationPreset()], include_tests=False).run(
        current_data=_dataset(current, columns, definition), reference_data=_dataset(reference, columns, definition)
    )


def value_drift(columns: list[str], method: str, reference: pl.DataFrame, current: pl.DataFrame) -> dict[str, float]:
    """Evidently's `ValueDrift(column, method)` value for each column (for cross-checks)."""
    from evidently import DataDefinition, Report
    from evidently.metrics import ValueDrift

    definition = DataDefinition(numerical_columns=columns)
    snapshot = Report([ValueDrift(column=c, method=method) for c in columns]).run(
        current_data=_dataset(current, columns, definition), reference_data=_dataset(reference, columns, definition)
    )
    return drift_values(snapshot)


def register_quantile_psi(bins: int) -> None:
    """Make `quantile_psi` an Evidently drift method (drifted at PSI >= its threshold, 0.1 by default)."""
    from evidently.legacy.calculations.stattests.registry import StatTest, register_stattest
    from evidently.legacy.core import ColumnType

    def quantile_psi(reference: pd.Series, current: pd.Series, feature_type: Any, threshold: float):
        value = psi(reference.to_numpy(), current.to_numpy(), bins)
        return value, value >= threshold

    test = StatTest(name=QUANTILE_PSI, display_name=f"PSI ({bins} reference quantile bins)",
                    allowed_feature_types=[ColumnType.Numerical], default_threshold=0.1)  # fmt: skip
    register_stattest(test, default_impl=quantile_psi)


def drift_values(snapshot: Any) -> dict[str, float]:
    """Column -> value of each `ValueDrift` metric in a snapshot (metric ids are hashes: found by metric name)."""
    found = {}
    for metric in snapshot.dict()["metrics"]:
        if metric["metric_name"].startswith("ValueDrift("):
            found[metric["config"]["column"]] = float(metric["value"])
    return found


def as_json(snapshot: Any) -> str:
    """The snapshot's metrics and tests as JSON text."""
    return snapshot.json()


def as_html(snapshot: Any) -> str:
    """The standalone HTML page of a snapshot."""
    return snapshot.get_html_str(as_iframe=False)


def _dataset(frame: pl.DataFrame, columns: list[str], definition: Any) -> Any:
    from evidently import Dataset

    return Dataset.from_pandas(pd.DataFrame(frame.select(columns).to_pandas()), data_definition=definition)
