from kedro.pipeline import Pipeline, node

from fraud_detection.pipelines.monitor.nodes import (
    build_windows,
    compute_drift,
    decide_action,
    drift_levels,
    evidently_reports,
    monitored_models,
    serving_health,
)

WINDOW_INPUTS = ["transaction_features", "prediction_records", "monitored_models", "params:monitor",
                 "params:features.label_delay_days"]  # fmt: skip
DECISION_INPUTS = [
    "drift_statistics",
    "monitor_windows",
    "serving_health",
    "labelled_predictions",
    "params:monitor",
    "params:register.gate",
    "params:evaluate.top_k",
    "params:features.label_delay_days",
]
HEALTH_INPUTS = ["prediction_table", "ingest_summary", "monitor_windows", "params:monitor"]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            # promotion (the register stage's decision) is read so that DVC runs this stage after a registration
            node(
                monitored_models,
                ["model_registry", "params:register.model_name", "promotion"],
                "monitored_models",
                name="load_models",
            ),
            node(build_windows, WINDOW_INPUTS, "monitor_windows", name="build_windows"),
            node(compute_drift, ["monitor_windows", "params:monitor"], "drift_statistics", name="compute_drift"),
            node(drift_levels, ["drift_statistics", "params:monitor"], "drift_table", name="drift_levels"),
            node(serving_health, HEALTH_INPUTS, "serving_health", name="serving_health"),
            node(
                evidently_reports,
                ["monitor_windows", "drift_table", "monitoring_decision", "params:monitor"],
                "drift_reports",
                name="evidently_reports",
            ),
            node(
                decide_action,
                DECISION_INPUTS,
                "monitoring_decision",
                name="decide",
            ),
        ]
    )
