from fraud_detection.pipelines.feedback.pipeline import create_pipeline

__all__ = ["create_pipeline"]
