from fraud_detection.pipelines.batch_predict.pipeline import create_pipeline

__all__ = ["create_pipeline"]
