from fraud_detection.pipelines.simulate.pipeline import create_pipeline

__all__ = ["create_pipeline"]
