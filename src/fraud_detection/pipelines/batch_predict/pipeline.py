from kedro.pipeline import Pipeline, node

from fraud_detection.pipelines.batch_predict.nodes import fail_on_rejections, plan_days, publish_batches, score_days

SCORE_INPUTS = ["transaction_features", "batch_days", "model_registry", "risk_store", "params:batch_predict",
                "params:register.model_name", "params:spark", "promotion"]  # fmt: skip
SCORE_OUTPUTS = ["batch_predictions", "investigation_queue", "rejected_batches", "batches_to_publish",
                 "batch_days_report"]  # fmt: skip


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(plan_days, ["transaction_features", "promotion", "params:batch_predict"], "batch_days", name="plan"),
            node(score_days, SCORE_INPUTS, SCORE_OUTPUTS, name="score_days"),
            # runs once score_days's files are saved: a published batch always has its predictions and queue
            node(
                publish_batches,
                ["batches_to_publish", "risk_store", "batch_days_report", "model_registry"],
                "batch_report",
                name="publish_batches",
            ),
            node(fail_on_rejections, "batch_report", None, name="fail_on_rejections"),
        ]
    )
