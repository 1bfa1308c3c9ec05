from kedro.pipeline import Pipeline, node

from fraud_detection.pipelines.register.nodes import gate_window, register_and_gate, version_lineage


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                gate_window,
                ["training_set", "params:train.holdout_days", "params:features.label_delay_days"],
                "gate_window",
                name="gate_window",
            ),
            node(
                version_lineage,
                ["candidate", "training_set_md5", "backtest_metrics"],
                "version_lineage",
                name="version_lineage",
            ),
            node(
                register_and_gate,
                ["candidate", "version_lineage", "gate_window", "model_registry", "params:register"],
                "promotion",
                name="register_and_gate",
            ),
        ]
    )
