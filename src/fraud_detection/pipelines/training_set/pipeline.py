from kedro.pipeline import Pipeline, node

from fraud_detection.pipelines.training_set.nodes import build_training_set, check_against_offline_features


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                build_training_set,
                ["feature_store", "transactions", "params:training_set"],
                "training_set_unchecked",
                name="build_training_set",
            ),
            node(
                check_against_offline_features,
                ["training_set_unchecked", "transaction_features"],
                "training_set",
                name="check_training_set",
            ),
        ]
    )
