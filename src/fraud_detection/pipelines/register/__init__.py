from fraud_detection.pipelines.register.pipeline import create_pipeline

__all__ = ["create_pipeline"]
