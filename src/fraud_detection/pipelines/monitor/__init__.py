from fraud_detection.pipelines.monitor.pipeline import create_pipeline

__all__ = ["create_pipeline"]
