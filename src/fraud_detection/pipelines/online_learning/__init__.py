from fraud_detection.pipelines.online_learning.pipeline import create_pipeline

__all__ = ["create_pipeline"]
