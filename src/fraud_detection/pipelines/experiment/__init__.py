from fraud_detection.pipelines.experiment.pipeline import create_pipeline

__all__ = ["create_pipeline"]
