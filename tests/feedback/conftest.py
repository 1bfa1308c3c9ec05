"""The feedback tests use the feature store tests' 45 simulated days."""

from tests.feature_store.conftest import transactions

__all__ = ["transactions"]
