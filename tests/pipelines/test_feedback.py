"""The feedback pipeline end to end on files: a prediction log folder and a label folder, as the service and the
traffic run write them, become the labelled predictions and reports/feedback.json; a fresh clone, where nothing
was served, gets an empty table and a valid summary."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from kedro.io import DataCatalog
from kedro.runner import SequentialRunner

from fraud_detection.datasets import JSONDataset, ParquetDataset
from fraud_detection.feedback.labels import LabelEventsDataset, LabelFiles, label_event
from fraud_detection.feedback.outcomes import COLUMNS
from fraud_detection.pipelines.feedback import create_pipeline
from fraud_detection.runtime.params import Params
from fraud_detection.serving.prediction_log import JsonLinesSink, PredictionTableDataset
from tests.feedback.examples import example_events, example_records
from tests.pipelines.kedro_catalog import param_entries


def _run(root: Path, params: Params) -> tuple[pl.DataFrame, dict]:
    catalog = DataCatalog(
        {
            "prediction_table": PredictionTableDataset(folder=str(root / "predictions")),
            "label_events": LabelEventsDataset(folder=str(root / "labels")),
            "labelled_predictions": ParquetDataset(str(root / "out" / "labelled_predictions.parquet")),
            "feedback_summary": JSONDataset(str(root / "out" / "feedback.json")),
            **param_entries(create_pipeline(), params),
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    summary_text = (root / "out" / "feedback.json").read_text()
    return pl.read_parquet(root / "out" / "labelled_predictions.parquet"), json.loads(summary_text)


def test_the_log_and_the_labels_become_labelled_predictions_and_the_summary(tmp_path: Path, params: Params) -> None:
    sink = JsonLinesSink(tmp_path / "predictions")
    sink.write(example_records())
    sink.close()
    labels = LabelFiles(tmp_path / "labels")
    labels.write([label_event(*row.values()) for row in example_events().iter_rows(named=True)])
    labels.close()

    labelled, summary = _run(tmp_path, params)
    assert labelled.height == len(example_records()) and labelled.schema == pl.Schema(COLUMNS)
    assert (summary["predictions"], summary["labelled"]) == (14, 12)
    served = next(g for g in summary["groups"] if g["role"] == "served")
    k = params.evaluate.top_k
    assert served["frauds"] == 4 and served["false_declines"] == 1
    assert k >= 5 and served[f"card_precision_at_{k}"] == round(3 / k, 6)  # day 1: its 5 cards, 3 fraudulent
    assert "NaN" not in (tmp_path / "out" / "feedback.json").read_text()


def test_a_fresh_clone_gets_an_empty_table_and_a_valid_summary(tmp_path: Path, params: Params) -> None:
    (tmp_path / "predictions").mkdir()
    (tmp_path / "predictions" / ".gitkeep").touch()
    labelled, summary = _run(tmp_path, params)
    assert labelled.height == 0 and labelled.schema == pl.Schema(COLUMNS)
    assert summary["predictions"] == 0 and summary["groups"] == []
