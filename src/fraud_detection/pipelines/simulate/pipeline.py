from kedro.pipeline import Pipeline, node

from fraud_detection.pipelines.simulate.nodes import simulate


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [node(simulate, "params:simulate", ["simulated_transactions", "simulated_compromises"], name="simulate")]
    )
