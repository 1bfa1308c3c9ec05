"""The feature store fixtures of tests/feature_store (a small Feast project on disk), for the serving tests."""

from tests.feature_store.conftest import feature_root, offline_features, transactions

__all__ = ["feature_root", "offline_features", "transactions"]
