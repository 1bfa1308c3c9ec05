"""The production profile is configured, not edited: each endpoint from an environment variable, with the local
service as its default (conf/production/catalog.yml, params.yaml `spark.master`)."""

from __future__ import annotations

import pytest

from fraud_detection.runtime.project import config_loader, feast_redis, project_params
from tests.conftest import PROJECT_ROOT

ENDPOINTS = ("FRAUD_DETECTION_REDIS_URL", "MLFLOW_TRACKING_URI", "FRAUD_DETECTION_POSTGRES_DSN", "SPARK_MASTER_URL")


@pytest.fixture
def clean_env(monkeypatch):
    for name in ENDPOINTS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _catalog() -> dict:
    return config_loader(PROJECT_ROOT, "production")["catalog"]


def test_without_variables_the_production_profile_points_at_the_local_services(clean_env) -> None:
    catalog = _catalog()
    assert catalog["feature_store"]["online_store"]["connection_string"] == "127.0.0.1:6379,db=0"
    assert catalog["model_registry"]["tracking_uri"] == "http://127.0.0.1:5000"
    assert catalog["model_registry"]["lock"] == "postgresql://postgres@127.0.0.1:5432/mlflow"
    redis_entries = [entry for entry in catalog.values() if isinstance(entry, dict) and "redis_url" in entry]
    assert len(redis_entries) >= 5 and {entry["redis_url"] for entry in redis_entries} == {"redis://127.0.0.1:6379/0"}
    assert catalog["risk_store"]["location"] == "redis://127.0.0.1:6379/0"
    assert project_params("production", PROJECT_ROOT).spark.master == "local[*]"


def test_each_endpoint_follows_its_variable(clean_env) -> None:
    clean_env.setenv("FRAUD_DETECTION_REDIS_URL", "rediss://:secret@cache.internal:6380/3")
    clean_env.setenv("MLFLOW_TRACKING_URI", "https://mlflow.internal")
    clean_env.setenv("FRAUD_DETECTION_POSTGRES_DSN", "postgresql://mlflow@db.internal:5432/mlflow")
    clean_env.setenv("SPARK_MASTER_URL", "spark://spark.internal:7077")
    catalog = _catalog()
    assert catalog["feature_store"]["online_store"]["connection_string"] == (
        "cache.internal:6380,db=3,password=secret,ssl=true"
    )
    assert (
        catalog["candidate"]["tracking_uri"] == catalog["model_registry"]["tracking_uri"] == "https://mlflow.internal"
    )
    assert catalog["model_registry"]["lock"] == "postgresql://mlflow@db.internal:5432/mlflow"
    assert {catalog[name]["redis_url"] for name in ("prediction_log", "label_stream", "prediction_table")} == {
        "rediss://:secret@cache.internal:6380/3"
    }
    assert project_params("production", PROJECT_ROOT).spark.master == "spark://spark.internal:7077"


@pytest.mark.parametrize(
    "url, expected",
    [
        ("redis://127.0.0.1:6379/0", "127.0.0.1:6379,db=0"),
        ("redis://localhost", "localhost:6379,db=0"),
        ("redis://:pw@host:7000/2", "host:7000,db=2,password=pw"),
    ],
)
def test_a_redis_url_becomes_feasts_connection_string(url, expected) -> None:
    assert feast_redis(url) == expected


@pytest.mark.parametrize("url", ["127.0.0.1:6379", "http://host:6379/0", "redis://host:6379/zero"])
def test_a_malformed_redis_url_is_refused_with_what_was_expected(url) -> None:
    with pytest.raises(ValueError, match=f"Redis URL '{url}'"):
        feast_redis(url)
