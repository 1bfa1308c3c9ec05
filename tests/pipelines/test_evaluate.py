"""The evaluate stage's nodes on a small simulated set: the backtest, its metrics and its plot data."""

from __future__ import annotations

import logging

import numpy as np
import polars as pl
import pytest

from fraud_detection.evaluation.params import EvaluateParams
from fraud_detection.evaluation.protocol import fold_test_set
from fraud_detection.models.params import TrainParams
from fraud_detection.pipelines.evaluate.nodes import _folds, backtest, backtest_metrics, backtest_plots
from fraud_detection.runtime.params import Params, ParamsError, checked_params
from tests.conftest import changed

MODELS = {"candidate", "logistic_regression", "gradient_boosting", "handbook_reference_lr", "handbook_reference_rf"}
LABEL_DELAY_DAYS = 7  # the delay between each fold's train and test weeks


@pytest.fixture(scope="module")
def evaluate_params(params: Params) -> EvaluateParams:
    """params.yaml `evaluate` moved onto the small set's dates (it starts 2018-04-01 and lasts 60 days)."""
    return changed(params.evaluate, first_test_start="2018-05-06", folds=2)


@pytest.fixture(scope="module")
def scores(
    small_training_set: pl.DataFrame, small_train_params: TrainParams, evaluate_params: EvaluateParams
) -> pl.DataFrame:
    return backtest(small_training_set, small_train_params, evaluate_params, LABEL_DELAY_DAYS)


def test_every_model_scores_each_fold_test_set(scores, small_training_set, evaluate_params) -> None:
    assert set(scores["model"].unique()) == MODELS
    for number, fold in enumerate(_folds(evaluate_params, LABEL_DELAY_DAYS)):
        assert (fold.test_start - fold.train_end).days == LABEL_DELAY_DAYS
        expected = fold_test_set(small_training_set, fold, LABEL_DELAY_DAYS)["transaction_id"]
        for model in MODELS:
            rows = scores.filter((pl.col("fold") == number) & (pl.col("model") == model))
            assert rows["transaction_id"].to_list() == expected.to_list()
            assert rows["score"].is_between(0, 1).all()


def test_metrics_have_mean_and_std_over_folds(scores, evaluate_params) -> None:
    metrics, folds = backtest_metrics(scores, evaluate_params)
    assert set(metrics["backtest"]) == MODELS
    for model, figures in metrics["backtest"].items():
        assert set(figures) == {"auc_roc", "average_precision", "card_precision_at_100"}
        for name, summary in figures.items():
            per_fold = [fold[name] for fold in folds[model].values()]
            assert len(per_fold) == 2
            assert summary["mean"] == pytest.approx(np.mean(per_fold))
            assert summary["std"] == pytest.approx(np.std(per_fold, ddof=1))
        assert figures["auc_roc"]["mean"] > 0.6, f"{model} learns something on the small set"


def test_plot_data_per_model(scores) -> None:
    plots = backtest_plots(scores)
    assert set(plots) == {f"{kind}_{m}" for kind in ("roc", "precision_recall", "scores") for m in MODELS}
    roc = plots["roc_candidate"]
    assert roc.row(0) == (0.0, 0.0) and roc.row(-1) == (1.0, 1.0) and roc.height <= 200
    assert roc["false_positive_rate"].is_sorted()
    shares = plots["scores_candidate"]
    assert shares["fraud_share"].sum() == pytest.approx(1) and shares["genuine_share"].sum() == pytest.approx(1)


def test_a_fold_without_frauds_is_skipped_with_a_warning(
    small_training_set, small_train_params, evaluate_params, caplog: pytest.LogCaptureFixture
) -> None:
    second_test_week = _folds(evaluate_params, LABEL_DELAY_DAYS)[1]
    day = pl.col("tx_datetime").dt.date()
    no_fraud = small_training_set.with_columns(
        pl.when(day.is_between(second_test_week.test_start, second_test_week.test_end, closed="left"))
        .then(0)
        .otherwise(pl.col("tx_fraud"))
        .alias("tx_fraud")
    )
    params = changed(evaluate_params, baselines=[])
    with caplog.at_level(logging.WARNING):
        scores = backtest(no_fraud, small_train_params, params, LABEL_DELAY_DAYS)
    assert scores["fold"].unique().to_list() == [0]
    assert "fold 1 (test from 2018-05-13) skipped: its test set has" in caplog.text


def test_no_usable_fold_is_an_error(small_training_set, small_train_params, evaluate_params) -> None:
    params = changed(evaluate_params, first_test_start="2019-01-01")
    with pytest.raises(ValueError, match="every fold was skipped"):
        backtest(small_training_set, small_train_params, params, LABEL_DELAY_DAYS)


def test_an_unknown_baseline_is_an_error(config_loader) -> None:
    raw = config_loader["parameters"]
    with pytest.raises(ParamsError) as error:
        checked_params({**raw, "evaluate": {**raw["evaluate"], "baselines": ["logistic_regression", "xgboost"]}})
    assert str(error.value) == (
        "params.yaml evaluate.baselines[1]='xgboost': expected 'logistic_regression' or 'gradient_boosting' or "
        "'handbook_reference_lr' or 'handbook_reference_rf'"
    )


def test_the_delay_is_features_label_delay_days(config_loader) -> None:
    """evaluate has no delay of its own: the gap between the train and test weeks is the one every stage uses."""
    raw = config_loader["parameters"]
    with pytest.raises(ParamsError) as error:
        checked_params({**raw, "evaluate": {**raw["evaluate"], "delay_days": 7}})
    assert str(error.value).startswith("params.yaml evaluate.delay_days=7: unknown key; expected one of [")
