from fraud_detection.pipelines.features.pipeline import create_pipeline

__all__ = ["create_pipeline"]
