from tests.feature_store.conftest import label_events, offline_features, transactions

__all__ = ["label_events", "offline_features", "transactions"]
