from kedro.pipeline import Pipeline, node

from fraud_detection.pipelines.experiment.nodes import analyze_experiment


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                analyze_experiment,
                ["labelled_predictions", "params:experiment", "params:serve.ab", "params:features.label_delay_days"],
                ["experiment_report", "experiment_pages"],
                name="analyze_experiment",
            ),
        ]
    )
