from fraud_detection.pipelines.training_set.pipeline import create_pipeline

__all__ = ["create_pipeline"]
