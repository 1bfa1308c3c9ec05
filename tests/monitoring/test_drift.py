"""Our drift table against Evidently's own values (same definitions, same numbers), and its behaviour: no shift
reads as none, a shift as drift, bad input as a clear error."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.stats import ks_2samp

from fraud_detection.features.definitions import FEATURES
from fraud_detection.monitoring import evidently_report
from fraud_detection.monitoring.drift import drift_table, psi

CHECKED = [
    "tx_amount",
    "customer_nb_tx_1d",
    "customer_avg_amount_7d",
    "tx_during_night",
    "terminal_risk_7d",
    "terminal_nb_tx_30d",
]  # fmt: skip  (many values, few values, binary, mostly zeros)


@pytest.fixture(scope="module")
def samples(offline_features) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two windows of the small simulated set's features (each more than 10,000 rows: SciPy's asymptotic KS)."""
    frame = offline_features.sort("tx_datetime")
    half = len(frame) // 2
    return frame[:half], frame[half:]


def as_arrays(frame: pl.DataFrame, columns: list[str]) -> dict[str, np.ndarray]:
    return {name: frame[name].to_numpy() for name in columns}


def test_sturges_binning_gives_evidentlys_psi_and_jensen_shannon_and_scipys_ks(samples):
    reference, current = samples
    assert min(len(reference), len(current)) > 10_000
    ours = drift_table(as_arrays(reference, CHECKED), as_arrays(current, CHECKED), binning="sturges")
    theirs_psi = evidently_report.value_drift(CHECKED, "psi", reference, current)
    theirs_js = evidently_report.value_drift(CHECKED, "jensenshannon", reference, current)
    theirs_ks = evidently_report.value_drift(CHECKED, "ks", reference, current)  # Evidently reports the p-value
    for row in ours.iter_rows(named=True):
        name = row["column"]
        scipy = ks_2samp(reference[name].to_numpy(), current[name].to_numpy())
        assert row["psi"] == pytest.approx(theirs_psi[name], rel=1e-9, abs=1e-12), name
        assert row["js_distance"] == pytest.approx(theirs_js[name], rel=1e-9, abs=1e-12), name
        assert row["ks_statistic"] == pytest.approx(scipy.statistic, abs=1e-12), name
        assert row["ks_pvalue"] == pytest.approx(theirs_ks[name], rel=1e-6, abs=1e-300), name


def test_quantile_psi_is_what_the_evidently_report_shows(samples):
    reference, current = samples
    ours = drift_table(as_arrays(reference, CHECKED), as_arrays(current, CHECKED))
    evidently_report.register_quantile_psi(10)
    theirs = evidently_report.value_drift(CHECKED, evidently_report.QUANTILE_PSI, reference, current)
    assert dict(zip(ours["column"], ours["psi"], strict=True)) == pytest.approx(theirs, rel=1e-12)


def test_the_same_distribution_reads_as_no_drift_and_a_shift_as_drift():
    rng = np.random.default_rng(0)
    reference = {"amount": rng.lognormal(3.5, 1.0, 50_000), "count": rng.poisson(3, 50_000).astype(float)}
    same = {"amount": rng.lognormal(3.5, 1.0, 20_000), "count": rng.poisson(3, 20_000).astype(float)}
    shifted = {"amount": same["amount"] * 2, "count": same["count"]}
    calm, moved = drift_table(reference, same), drift_table(reference, shifted)
    assert calm["psi"].max() < 0.01 and calm["ks_pvalue"].min() > 0.001
    assert moved.row(0, named=True)["psi"] > 0.25 and moved.row(0, named=True)["ks_pvalue"] < 1e-100
    assert moved.row(1, named=True) == calm.row(1, named=True)  # an unchanged column is untouched
    # equal-width bins (Evidently's) see less of the doubling of a heavy-tailed amount: why quantile is the default
    wide = drift_table(reference, shifted, binning="sturges").row(0, named=True)["psi"]
    assert wide < moved.row(0, named=True)["psi"] / 2


def test_every_feature_and_the_score_of_the_real_schema_go_through(samples):
    reference, current = samples
    ref, cur = as_arrays(reference, list(FEATURES)), as_arrays(current, list(FEATURES))
    ref["score"], cur["score"] = np.linspace(0, 1, len(reference)), np.linspace(0, 1, len(current))
    table = drift_table(ref, cur)
    assert table["column"].to_list() == [*FEATURES, "score"]
    assert table.select(pl.all().exclude("column").is_finite().all()).row(0) == (True,) * 6


def test_bad_input_names_the_column_and_what_was_expected():
    with pytest.raises(ValueError, match=r"column amount of the current sample has 1 non-finite values"):
        drift_table({"amount": np.ones(10)}, {"amount": np.array([1.0, np.nan])})
    with pytest.raises(ValueError, match=r"current sample lacks columns \['count'\]"):
        drift_table({"count": np.ones(3)}, {"amount": np.ones(3)})
    with pytest.raises(ValueError, match="needs two non-empty samples"):
        drift_table({"amount": np.ones(3)}, {"amount": np.zeros(0)})
    with pytest.raises(ValueError, match=r"drift binning 'width'; expected one of \['quantile', 'sturges'\]"):
        drift_table({"amount": np.ones(3)}, {"amount": np.ones(3)}, binning="width")
    assert psi(np.arange(100.0), np.arange(100.0)) == 0.0
