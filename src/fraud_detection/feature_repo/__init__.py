"""Feast definitions only (entities, sources, feature views, the on-demand view, feature services).

`feast apply` imports every module here: keep logic in fraud_detection.features and wiring in the pipelines.
"""

from fraud_detection.feature_repo.definitions import FEAST_OBJECTS, FEATURE_SERVICE, PUSH_SOURCES

__all__ = ["FEAST_OBJECTS", "FEATURE_SERVICE", "PUSH_SOURCES"]
