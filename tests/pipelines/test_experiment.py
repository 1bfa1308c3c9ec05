"""The experiment stage on files: labelled predictions of two variants become reports/experiment.json and the page;
a fresh clone (nothing served) and a single variant get a report that says why nothing is compared."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from fraud_detection.cli import main
from fraud_detection.datasets import JSONDataset, TextFilesDataset
from fraud_detection.feedback.outcomes import COLUMNS
from fraud_detection.pipelines.experiment import create_pipeline
from fraud_detection.runtime.params import Params
from tests.conftest import PROJECT_ROOT, changed
from tests.pipelines.kedro_catalog import param_entries

START = datetime(2018, 10, 1, tzinfo=UTC)
METRICS = {"fraud_amount_recall", "false_decline_rate", "review_rate", "average_precision", "latency_p99_ms",
           "degraded_rate", "fallback_rate"}  # fmt: skip


def labelled_predictions(customers: int, treatment_catches: float, seed: int = 0) -> pl.DataFrame:
    """Served predictions of 20 days, customers split by id parity into champion / challenger, 2 % frauds; the
    champion declines 60 % of the frauds, the challenger `treatment_catches`."""
    rng = np.random.default_rng(seed)
    customer = np.repeat(np.arange(customers), 8)
    n = len(customer)
    fraud = rng.random(n) < 0.02
    variant = np.where(customer % 2 == 0, "champion", "challenger")
    caught = rng.random(n) < np.where(variant == "champion", 0.6, treatment_catches)
    decision = np.where(fraud & caught, "decline", np.where(rng.random(n) < 0.01, "review", "approve"))
    moment = [START + timedelta(seconds=int(s)) for s in rng.integers(0, 20 * 86_400, n)]
    frame = pl.DataFrame({
        "transaction_id": np.arange(n), "tx_datetime": moment, "customer_id": customer,
        "tx_amount": rng.gamma(2.0, 30.0, n), "role": "served", "variant": variant, "model_version": "1",
        "fraud_probability": np.where(fraud, rng.beta(5, 2, n), rng.beta(1, 8, n)), "decision": decision,
        "latency_ms": rng.gamma(2.0, 5.0, n), "degraded": False, "tx_fraud": fraud.astype(np.int8),
        "label_known_at": [m + timedelta(days=7) for m in moment], "label_source": "delayed",
    })  # fmt: skip
    return frame.select(pl.col(name).cast(kind) for name, kind in COLUMNS.items())


def _run(root: Path, table: pl.DataFrame, params: Params) -> tuple[dict, dict[str, Path]]:
    catalog = DataCatalog({
        "labelled_predictions": MemoryDataset(table),
        "experiment_report": JSONDataset(str(root / "experiment.json")),
        "experiment_pages": TextFilesDataset(str(root / "experiments")),
        **param_entries(create_pipeline(), params),
    })  # fmt: skip
    SequentialRunner().run(create_pipeline(), catalog)
    return json.loads((root / "experiment.json").read_text()), TextFilesDataset(str(root / "experiments")).load()


def _ab(params: Params) -> Params:
    return params.model_copy(update={"experiment": changed(params.experiment, shares={"champion": 0.5,
                                                                                      "challenger": 0.5})})  # fmt: skip


def test_two_variants_are_compared_on_every_metric(tmp_path: Path, params: Params) -> None:
    report, pages = _run(tmp_path, labelled_predictions(4000, treatment_catches=0.9), _ab(params))
    assert set(report["variants"]) == {"champion", "challenger"}
    assert report["variants"]["champion"]["share"] == 0.5
    assert report["srm"]["mismatch"] is False
    compared = {c["metric"]: c for c in report["comparisons"]}
    assert set(compared) == METRICS
    recall = compared["fraud_amount_recall"]
    assert recall["treatment"] == "challenger" and recall["difference"] > 0.15 and recall["significant"] is True
    assert set(report["power"]["challenger"]) == METRICS
    assert list(pages) == ["ab-1.html"]
    page = pages["ab-1.html"].read_text()
    assert "Experiment ab-1" in page and "fraud_amount_recall" in page and page.count("<img") == 2


def test_nothing_served_says_so(tmp_path: Path, params: Params) -> None:
    report, pages = _run(tmp_path, pl.DataFrame(schema=COLUMNS), _ab(params))
    assert report["status"] == "no served predictions yet" and report["comparisons"] == []
    assert "no served predictions yet" in pages["ab-1.html"].read_text()
    assert "SRM" not in report and "not tested: no split to check" in pages["ab-1.html"].read_text()


def test_the_shadow_is_reported_beside_a_single_variant(tmp_path: Path, params: Params) -> None:
    """Shadow mode: every customer served by the champion, the challenger scoring the same transactions again."""
    served = labelled_predictions(2000, treatment_catches=0.6).with_columns(variant=pl.lit("champion"))
    better = labelled_predictions(2000, treatment_catches=0.95).with_columns(variant=pl.lit("champion"))
    shadow = better.with_columns(role=pl.lit("shadow"), variant=pl.lit("shadow"), model_version=pl.lit("2"))
    report, pages = _run(tmp_path, pl.concat([served, shadow]), params)
    assert report["status"].startswith("one variant") and report["shadow"]["paired"] == served.height
    recall = next(m for m in report["shadow"]["metrics"] if m["metric"] == "fraud_amount_recall")
    assert recall["difference"] > 0.1 and recall["ci_low"] > 0
    assert any(f["from"] == "approve" and f["to"] == "decline" and f["frauds"] > 0 for f in report["shadow"]["flips"])
    assert "Flipped decisions" in pages["ab-1.html"].read_text()


def test_a_single_variant_compares_nothing(tmp_path: Path, params: Params) -> None:
    assert dict(params.serve.ab.variants) == {"champion": 1.0} and params.experiment.shares is None
    table = labelled_predictions(200, treatment_catches=0.6).with_columns(variant=pl.lit("champion"))
    report, _ = _run(tmp_path, table, params)
    assert report["status"].startswith("one variant") and report["variants"]["champion"]["customers"] == 200


# -- `fraud-detection experiment analyze`, in a project of the repository's conf and params
@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(PROJECT_ROOT / "conf/base", tmp_path / "conf/base")
    (tmp_path / "conf/local").mkdir()
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copy(PROJECT_ROOT / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_command_analyses_a_file_with_the_shares_given(project: Path, capsys: pytest.CaptureFixture) -> None:
    labelled_predictions(2000, treatment_catches=0.9).write_parquet(project / "table.parquet")
    code = main(["experiment", "analyze", "--input", "table.parquet", "--shares", "champion=0.5,challenger=0.5",
                 "--json"])  # fmt: skip
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert json.loads((project / "reports/experiment.json").read_text()) == printed
    assert printed["control"] == "champion" and (project / "reports/experiments/ab-1.html").exists()


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        ("champion=half,challenger=0.5", "--shares 'champion=half': expected VARIANT=SHARE"),
        ("champion=0.7,challenger=0.5", "sum"),
        ("champion=1.0", "one variant"),
    ],
)
def test_bad_shares_name_what_was_wrong(project: Path, capsys: pytest.CaptureFixture, shares: str, message: str):
    labelled_predictions(200, treatment_catches=0.9).write_parquet(project / "table.parquet")
    code = main(["experiment", "analyze", "--input", "table.parquet", "--shares", shares])
    out = capsys.readouterr()
    if message == "one variant":  # a design of one variant is not an error: nothing to compare, and it says so
        assert code == 0 and "one variant" in out.out
        return
    assert code == 2 and message in out.err, out.err


def test_a_file_without_a_column_is_named(project: Path, capsys: pytest.CaptureFixture) -> None:
    labelled_predictions(200, treatment_catches=0.9).drop("decision").write_parquet(project / "table.parquet")
    code = main(["experiment", "analyze", "--input", "table.parquet", "--shares", "champion=0.5,challenger=0.5"])
    assert code == 2 and "decision" in capsys.readouterr().err
    assert not (project / "reports/experiment.json").exists(), "nothing half-written"
