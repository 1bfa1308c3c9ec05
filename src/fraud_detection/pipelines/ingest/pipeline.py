from kedro.pipeline import Pipeline, node

from fraud_detection.pipelines.ingest.nodes import read_source, validate_transactions


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                read_source,
                ["params:ingest", "simulated_transactions", "traffic_transactions"],
                "source_rows",
                name="read_source",
            ),
            node(
                validate_transactions,
                ["source_rows", "params:ingest", "params:spark"],
                ["transactions", "quarantine", "ingest_summary"],
                name="validate_transactions",
            ),
        ]
    )
