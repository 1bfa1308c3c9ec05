from kedro.pipeline import Pipeline, node

from fraud_detection.pipelines.evaluate.nodes import backtest, backtest_metrics, backtest_plots


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                backtest,
                ["training_set", "params:train", "params:evaluate", "params:features.label_delay_days"],
                "backtest_scores",
                name="backtest",
            ),
            node(
                backtest_metrics,
                ["backtest_scores", "params:evaluate"],
                ["backtest_metrics", "backtest_folds"],
                name="backtest_metrics",
            ),
            node(backtest_plots, "backtest_scores", "backtest_plots", name="backtest_plots"),
        ]
    )
