"""The BentoML service at two of its three levels (the third, `bentoml serve` as a subprocess, is in
tests/test_dvc_repro.py): the class in-process, and its ASGI app through a test client. Both on a real serving
project: the Feast store materialized up to the last simulated day, an MLflow registry with a champion and a
challenger, the models imported into BentoML's store."""

from __future__ import annotations

import json

import polars as pl
import pytest
from starlette.testclient import TestClient
from tests.conftest import changed

from fraud_detection.features.definitions import MICROS_PER_DAY
from fraud_detection.serving.schemas import Transaction

GOOD = {"transaction_id": 1, "tx_datetime": "2018-05-15T12:00:00Z", "customer_id": 125, "terminal_id": 474,
        "tx_amount": 42.0}  # fmt: skip


@pytest.fixture(scope="module")
def service_class():
    from fraud_detection.serving.service import FraudService

    return FraudService


@pytest.fixture
def inside(serving_project, monkeypatch):
    monkeypatch.setenv("FRAUD_DETECTION_ADMIN_TOKEN", "s3cret")
    with serving_project.inside():
        yield serving_project


def test_the_class_in_process_serves_the_champion_and_reloads_after_a_promotion(service_class, inside) -> None:
    from fraud_detection.registry.promotion import force_promote

    service = service_class()
    try:
        assert service.__is_ready__()
        prediction = service.detector.predict(Transaction.model_validate(GOOD))
        assert (prediction.model_version, prediction.variant) == (str(inside.champion), "champion")
        assert service.reload() == {"champion": str(inside.champion)}, "nothing moved: nothing reloaded"
        registry = inside.registry()
        force_promote(registry, inside.challenger, "tests", "reload me")
        try:
            assert service.reload() == {"champion": str(inside.challenger)}
            again = service.detector.predict(Transaction.model_validate({**GOOD, "transaction_id": 2}))
            assert again.model_version == str(inside.challenger)
        finally:
            force_promote(registry, inside.champion, "tests", "restore")
            registry.move("challenger", inside.challenger, "promote", "tests", "restore")
    finally:
        service.close()


def test_the_class_applies_a_rollouts_shares_and_shadow_without_a_restart(service_class, inside, params) -> None:
    from fraud_detection.experiments import rollout
    from fraud_detection.registry.gate import CHALLENGER

    registry = inside.registry()
    service = service_class()
    try:
        state = rollout.start(registry, str(inside.challenger), changed(params.rollout, steps=[0, 50, 100]), None,
                              "tests")  # fmt: skip
        assert service.reload() == {"champion": str(inside.champion), "shadow": str(inside.challenger)}
        with registry.locked():  # the step a tick would take
            registry.set_experiment_locked({**state, "step": 1, "variants": rollout.shares_at(50), "shadow": None},
                                           rollout.STEP, "tests", "to 50 %")  # fmt: skip
        assert service.reload() == {"champion": str(inside.champion), CHALLENGER: str(inside.challenger)}
        requests = [Transaction.model_validate({**GOOD, "transaction_id": 10 + c, "customer_id": c}) for c in range(99)]
        answers = [service.detector.predict(request) for request in requests]
        served = {(a.variant, a.model_version) for a in answers}
        assert served == {("champion", str(inside.champion)), (CHALLENGER, str(inside.challenger))}
        assert 0.3 < sum(a.variant == CHALLENGER for a in answers) / len(answers) < 0.7
        rollout.abort(registry, "tests", "done")
        assert service.reload() == {"champion": str(inside.champion)}, "aborted: the champion alone, as params say"
    finally:
        service.close()


def test_the_class_is_not_ready_without_its_online_store(service_class, inside) -> None:
    service = service_class()
    online = inside.root / "data/05_feature_store/online.db"
    online.rename(online.with_suffix(".away"))
    try:
        assert not service.__is_ready__()
        answer = service.detector.predict(Transaction.model_validate(GOOD))
        assert answer.degraded and answer.reasons[0].startswith("online store unavailable")
    finally:
        online.with_suffix(".away").rename(online)
        service.close()
    assert service.__is_ready__()


@pytest.fixture(scope="module")
def client(service_class, serving_project):
    mp = pytest.MonkeyPatch()
    mp.setenv("FRAUD_DETECTION_ADMIN_TOKEN", "s3cret")
    with serving_project.inside(), TestClient(service_class.to_asgi(is_main=True)) as test_client:
        yield test_client
    mp.undo()


def test_the_asgi_app_predicts_one_and_a_batch(client, serving_project, transactions) -> None:
    answer = client.post("/predict", json=GOOD)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == str(serving_project.champion) and not body["degraded"], body["reasons"]
    assert set(body) == {"transaction_id", "fraud_probability", "decision", "model_version", "variant", "degraded",
                         "reasons", "latency_ms"}  # fmt: skip
    day = transactions.filter(pl.col("tx_datetime").dt.epoch("us") // MICROS_PER_DAY == serving_project.last_day)
    batch = [{**row, "tx_datetime": row["tx_datetime"].isoformat(), "transaction_id": row["transaction_id"] + 10**7}
             for row in day.head(25).select("transaction_id", "tx_datetime", "customer_id", "terminal_id",
                                            "tx_amount").iter_rows(named=True)]  # fmt: skip
    answers = client.post("/predict_batch", json={"transactions": batch})
    assert answers.status_code == 200, answers.text
    assert [a["transaction_id"] for a in answers.json()] == [t["transaction_id"] for t in batch]


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({"tx_amount": -1}, "tx_amount", "expected a finite amount between 0 and"),
        ({"tx_amount": "NaN"}, "tx_amount", "valid number"),  # a string: JSON amounts are numbers
        ({"tx_amount": "lots"}, "tx_amount", "valid number"),
        ({"customer_id": "x"}, "customer_id", "valid integer"),
        ({"customer_id": -3}, "customer_id", "greater than or equal to 0"),
        ({"tx_datetime": "2018-05-30T12:00:00"}, "tx_datetime", "timezone"),
        ({"tx_datetime": "1850-01-01T00:00:00Z"}, "tx_datetime", "expected an instant from"),
        ({"tx_datetime": "tomorrow"}, "tx_datetime", "valid datetime"),
        ({"surprise": 1}, "surprise", "Extra inputs are not permitted"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(client, change: dict, field: str, expected: str) -> None:
    refused = client.post("/predict", json={**GOOD, **change})
    assert refused.status_code == 400, refused.text
    [problem] = refused.json()["detail"]
    assert problem["loc"][-1] == field and expected in problem["msg"], problem


def test_malformed_missing_oversized_and_huge_requests_are_4xx(client, serving_project) -> None:
    missing = client.post("/predict", json={k: v for k, v in GOOD.items() if k != "tx_amount"})
    assert missing.status_code == 400 and missing.json()["detail"][0]["loc"] == ["tx_amount"]
    garbage = client.post("/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert garbage.status_code == 400 and garbage.json()["detail"][0]["type"] == "json_invalid"
    wrong_type = client.post("/predict", content=b"a=1", headers={"content-type": "application/x-www-form-urlencoded"})
    assert wrong_type.status_code == 415
    limit = json.loads((serving_project.root / "params.yaml").read_text().split("max_body_bytes:")[1].split()[0])
    oversized = client.post("/predict", content=b" " * (limit + 1), headers={"content-type": "application/json"})
    assert oversized.status_code == 413 and str(limit) in oversized.json()["error"]
    chunked = client.post(
        "/predict_batch",
        content=iter([b" " * 65536] * (limit // 65536 + 2)),
        headers={"content-type": "application/json"},
    )  # fmt: skip (no content-length)
    assert chunked.status_code == 413
    huge = client.post("/predict_batch", json={"transactions": [GOOD] * 10_001})
    assert huge.status_code == 400 and "at most 10000" in huge.text
    bad_item = client.post("/predict_batch", json={"transactions": [GOOD, {**GOOD, "tx_amount": -5}]})
    assert bad_item.status_code == 400 and bad_item.json()["detail"][0]["loc"] == ["transactions", 1, "tx_amount"]
    assert client.post("/predict", json=GOOD).status_code == 200, "and it keeps serving"


def test_admin_needs_the_token_and_metrics_are_exported(client) -> None:
    assert client.post("/admin/reload", json={}).status_code == 401
    assert client.post("/admin/reload", json={}, headers={"authorization": "Bearer guess"}).status_code == 401
    reloaded = client.post("/admin/reload", json={}, headers={"authorization": "Bearer s3cret"})
    assert reloaded.status_code == 200 and "champion" in reloaded.json()
    client.post("/predict", json=GOOD)
    client.app_state  # noqa: B018 (the client is up)
    import time

    time.sleep(1.5)  # the counters are exported every serve.metrics_interval_s
    metrics = client.get("/metrics").text
    for name in ("fraud_detection_http_requests_total", "fraud_detection_http_request_duration_seconds_bucket",
                 "fraud_detection_requests_total", "fraud_detection_prediction_log_dropped_total"):  # fmt: skip
        assert name in metrics, name
    assert client.get("/readyz").status_code == 200
    assert client.get("/nowhere").status_code == 404


def test_the_risk_table_is_served_and_keeps_answering_while_a_batch_is_published(client, serving_project) -> None:
    import threading

    import numpy as np

    from fraud_detection.batch import risk_store as store_module
    from fraud_detection.batch.risk_store import SqliteRiskStore

    store = SqliteRiskStore(serving_project.root / "data/07_model_output/risk_store.db")
    cards = pl.DataFrame({"customer_id": list(range(5000)), "risk": [0.3] * 5000, "transactions": [2] * 5000,
                          "riskiest_transaction": list(range(5000))})  # fmt: skip
    store.publish("2018-05-14", "1", cards, np.full(5000, 0.3))
    card = client.get("/risk/42")
    assert card.status_code == 200, card.text
    assert card.json() | {"published_at": None} == {"customer_id": 42, "risk": 0.3, "transactions": 2,
                                                   "riskiest_transaction": 42, "batch_date": "2018-05-14",
                                                   "model_version": "1", "published_at": None}  # fmt: skip
    assert client.get("/risk/999999").status_code == 404
    assert client.get("/risk/abc").status_code == 400
    answers, stop = [], threading.Event()

    def look() -> None:
        while not stop.is_set():
            answer = client.get("/risk/42")
            answers.append((answer.status_code, answer.json().get("batch_date")))

    reader = threading.Thread(target=look)
    reader.start()
    mp = pytest.MonkeyPatch()
    mp.setattr(store_module, "WRITE_CHUNK", 200)
    try:
        store.publish("2018-05-15", "1", cards.with_columns(pl.lit(0.9).alias("risk")), np.full(5000, 0.9))
    finally:
        mp.undo()
        stop.set()
        reader.join()
    assert answers and {status for status, _ in answers} == {200}, "it kept answering"
    assert {day for _, day in answers} <= {"2018-05-14", "2018-05-15"}
    assert client.get("/risk/42").json()["batch_date"] == "2018-05-15"
