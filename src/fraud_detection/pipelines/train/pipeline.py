from kedro.pipeline import Pipeline, node

from fraud_detection.pipelines.train.nodes import train_candidate


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                train_candidate,
                [
                    "training_set",
                    "params:train",
                    "params:features.label_delay_days",
                    "params:training_set.feature_service",
                ],
                "candidate",
                name="train_candidate",
            ),
        ]
    )
