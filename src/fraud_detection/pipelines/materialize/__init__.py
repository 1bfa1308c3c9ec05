from fraud_detection.pipelines.materialize.pipeline import create_pipeline

__all__ = ["create_pipeline"]
