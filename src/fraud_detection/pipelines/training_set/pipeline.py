from kedro.pipeline import Pipeline, node

from fraud_detection.pipelines.training_set.nodes import checked_training_set


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                checked_training_set,
                ["feature_store", "transactions", "transaction_features", "params:training_set"],
                "training_set",
                name="build_training_set",
            ),
        ]
    )
