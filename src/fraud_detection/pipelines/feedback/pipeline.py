from kedro.pipeline import Pipeline, node

from fraud_detection.pipelines.feedback.nodes import label_predictions, summarise


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(label_predictions, ["prediction_table", "label_events"], "labelled_predictions", name="label"),
            node(
                summarise,
                ["labelled_predictions", "label_events", "params:evaluate.top_k"],
                "feedback_summary",
                name="summarise",
            ),
        ]
    )
