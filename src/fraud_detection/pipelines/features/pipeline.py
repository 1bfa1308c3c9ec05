from kedro.pipeline import Pipeline, node

from fraud_detection.pipelines.features.nodes import compute_state_tables, compute_transaction_features

STATE_TABLES = ["customer_daily", "customer_intraday", "terminal_daily"]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                compute_state_tables,
                ["transactions", "label_events", "params:features", "params:spark"],
                STATE_TABLES,
                name="compute_state_tables",
            ),
            node(
                compute_transaction_features,
                ["transactions", *STATE_TABLES, "params:features", "params:spark"],
                "transaction_features",
                name="compute_transaction_features",
            ),
        ]
    )
