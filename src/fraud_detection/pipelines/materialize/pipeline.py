from kedro.pipeline import Pipeline, node

from fraud_detection.pipelines.materialize.nodes import plan_materialization


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                plan_materialization,
                ["customer_daily", "customer_intraday", "terminal_daily", "params:materialize"],
                "feature_store",
                name="materialize",
            )
        ]
    )
