from tests.feature_store.conftest import offline_features, transactions

__all__ = ["offline_features", "transactions"]
