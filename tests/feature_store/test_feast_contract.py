"""The contract of feature_store/feast_adapter.py with Feast: the version it was verified against, and the private
names it calls. On a Feast upgrade this fails first, by name; then the adapter's behaviour tests (test_online_rows.py:
bytes and rows against Feast's own writers; test_skew.py: reads against `get_online_features`) say what changed."""

from __future__ import annotations

import importlib
from importlib.metadata import version

import pytest

VERIFIED_MINOR = "0.67"
PRIVATE_NAMES = [
    ("feast.feature_store", "FeatureStore._get_provider"),
    ("feast.infra.online_stores.sqlite", "_table_id"),
    ("feast.infra.online_stores.sqlite", "adapt_datetime_epoch"),
    ("feast.infra.online_stores.redis", "_versioned_fv_name"),
    ("feast.infra.online_stores.redis", "RedisOnlineStore._parse_connection_string"),
    ("feast.infra.online_stores.redis", "RedisOnlineStore._generate_hset_keys_for_features"),
    ("feast.infra.key_encoding_utils", "serialize_entity_key"),
]


def test_feast_is_the_minor_version_the_adapter_was_verified_against() -> None:
    installed = version("feast")
    assert installed.startswith(VERIFIED_MINOR + "."), (
        f"feast {installed} is installed; feature_store/feast_adapter.py was verified against {VERIFIED_MINOR}.x. "
        "Re-verify its storage formats (tests/feature_store) before changing the pin in pyproject.toml"
    )


@pytest.mark.parametrize(("module", "name"), PRIVATE_NAMES)
def test_the_private_names_the_adapter_uses_exist(module: str, name: str) -> None:
    found = importlib.import_module(module)
    for part in name.split("."):
        assert hasattr(found, part), f"{module}.{name} is gone: feature_store/feast_adapter.py relies on it"
        found = getattr(found, part)
    assert callable(found)
