"""The service's OpenAPI document (`GET /docs.json`): it lists every route the app answers and nothing else, its
schemas are the pydantic models', the limits it states are the ones the service applies, and the service's real
answers conform to it (in process); and schemathesis, with all its checks, finds nothing against `bentoml serve`
(slow)."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
from pathlib import Path

import jsonschema_rs
import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError
from starlette.routing import Mount, Route
from starlette.testclient import TestClient
from tests.http_helpers import free_port, wait_ready
from tests.project_copy import project_env

from fraud_detection.serving.http import EDGE_ROUTES, customer_id_pattern, parse_customer_id
from fraud_detection.serving.openapi import REF
from fraud_detection.serving.schemas import PREDICTIONS, ErrorBody, Prediction, RiskCard

GOOD = {"transaction_id": 1, "tx_datetime": "2018-05-15T12:00:00Z", "customer_id": 42, "terminal_id": 474,
        "tx_amount": 42.0}  # fmt: skip
TOKEN = "s3cret"
NOT_ROUTES = {"/static_content"}  # the Swagger page's files: a folder, not an API


@pytest.fixture(scope="module")
def service():
    from fraud_detection.serving import service

    return service


@pytest.fixture(scope="module")
def document(service) -> dict:
    return json.loads(service.openapi_json())


def _validator(document: dict, schema: dict) -> jsonschema_rs.Validator:
    """A draft 2020-12 validator of `schema`, its `#/components/schemas/...` references resolved in `document`."""
    return jsonschema_rs.Draft202012Validator({**schema, "components": document["components"]}, validate_formats=True)


def test_the_document_lists_every_route_the_app_answers_and_no_other(service, document) -> None:
    app = service.FraudService.to_asgi(is_main=True)
    answered = {(path, method) for path, method in EDGE_ROUTES.items()}
    for route in app.routes:
        if isinstance(route, Route):
            answered |= {(route.path, method) for method in route.methods - {"HEAD"}}
        else:
            assert isinstance(route, Mount) and route.path in NOT_ROUTES, route
    documented = {(path, method.upper()) for path, item in document["paths"].items() for method in item}
    assert documented == answered
    assert document["openapi"].startswith("3.1")
    operation_ids = [op["operationId"] for item in document["paths"].values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))


def test_the_schemas_are_the_models(service, document) -> None:
    def schema(model, mode: str = "serialization") -> dict:
        return {k: v for k, v in model.model_json_schema(ref_template=REF, mode=mode).items() if k != "$defs"}

    components, paths = document["components"]["schemas"], document["paths"]
    apis = service.FraudService.apis
    assert components["Transaction"] == schema(service.CheckedTransaction, "validation")
    assert components["PredictBatchRequest"] == schema(apis["predict_batch"].input_spec, "validation")
    assert components["AdminReloadRequest"] == schema(apis["admin_reload"].input_spec, "validation")
    for model in (Prediction, RiskCard, ErrorBody):
        assert components[model.__name__] == schema(model), model

    def body(path: str, method: str, status: str) -> dict:
        return paths[path][method]["responses"][status]["content"]["application/json"]["schema"]

    assert paths["/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Transaction"
    }
    assert body("/predict", "post", "200") == {"$ref": "#/components/schemas/Prediction"}
    assert body("/predict_batch", "post", "200") == {k: v for k, v in PREDICTIONS.json_schema(
        mode="serialization", ref_template=REF).items() if k != "$defs"}  # fmt: skip
    assert body("/risk/{customer_id}", "get", "200") == {"$ref": "#/components/schemas/RiskCard"}
    for path, item in paths.items():
        for method, operation in item.items():
            for status, answer in operation["responses"].items():
                if status >= "400" and "application/json" in answer["content"]:
                    assert answer["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/ErrorBody"
                    }, (path, method, status)  # fmt: skip
    assert paths["/admin/reload"]["post"]["security"] == [{"adminToken": []}]
    assert set(paths["/metrics"]["get"]["responses"]["200"]["content"]) == {"text/plain"}


@pytest.mark.parametrize(
    ("change", "valid"),
    [
        ({}, True),
        ({"tx_amount": 0}, True),
        ({"tx_amount": 1e6}, True),
        ({"tx_amount": 1e6 + 0.01}, False),
        ({"tx_amount": -0.01}, False),
        ({"tx_amount": "42"}, False),
        ({"customer_id": "5"}, False),
        ({"customer_id": True}, False),
        ({"customer_id": 5.5}, False),
        ({"customer_id": 5.0}, True),  # an integer, to JSON Schema
        ({"transaction_id": 1e19}, False),
        ({"customer_id": -1}, False),
        ({"customer_id": 2**63}, False),
        ({"tx_datetime": "2000-01-01T00:00:00Z"}, True),
        ({"tx_datetime": "2099-12-31T23:59:59.999999+00:00"}, True),
        ({"tx_datetime": "1999-12-31T23:59:59Z"}, False),
        ({"tx_datetime": "2100-01-01T00:00:00Z"}, False),
        ({"tx_datetime": "2018-05-15T12:00:00"}, False),  # no timezone
        ({"tx_datetime": "2018-05-15t12:00:00.123456789-23:59"}, True),
        ({"tx_datetime": "2018-06-30T23:59:60Z"}, False),  # a leap second
        ({"tx_datetime": "2018-02-30T12:00:00Z"}, False),
        ({"tx_datetime": 1526385600}, False),  # a number, not an ISO 8601 string
        ({"surprise": 1}, False),
    ],
)
def test_the_schema_and_the_model_accept_the_same_transactions(service, document, change: dict, valid: bool) -> None:
    """The limits the document states (params.yaml `ingest`) are the ones the model applies, and the model is as
    strict about types as the schema."""
    body = json.dumps({**GOOD, **change})
    schema_says = _validator(document, {"$ref": "#/components/schemas/Transaction"}).is_valid(json.loads(body))
    try:
        service.CheckedTransaction.model_validate_json(body)
        model_says = True
    except ValidationError:
        model_says = False
    assert (schema_says, model_says) == (valid, valid)


def test_the_card_id_pattern_accepts_what_the_risk_route_parses() -> None:
    pattern = re.compile(customer_id_pattern())
    rng = random.Random(7)
    edges = ["0", "-0", "-1", "007", "", "1.0", "1e3", "+1", " 1", "\u00b2", str(2**63 - 1), str(2**63)]
    edges.append("0" + str(2**63 - 1))
    drawn = [str(rng.randrange(2**64)) for _ in range(2000)] + [str(2**63 + rng.randrange(-99, 99)) for _ in range(200)]
    for raw in edges + drawn:
        assert bool(pattern.fullmatch(raw)) == isinstance(parse_customer_id(raw), int), raw


@pytest.fixture(scope="module")
def client(service, serving_project):
    mp = pytest.MonkeyPatch()
    mp.setenv("FRAUD_DETECTION_ADMIN_TOKEN", TOKEN)
    with serving_project.inside(), TestClient(service.FraudService.to_asgi(is_main=True)) as test_client:
        _publish_risk(serving_project.root, cards=50)
        yield test_client
    mp.undo()


def _publish_risk(root: Path, cards: int) -> None:
    from fraud_detection.batch.risk_store import SqliteRiskStore

    table = pl.DataFrame({"customer_id": list(range(cards)), "risk": [0.25] * cards, "transactions": [3] * cards,
                          "riskiest_transaction": list(range(cards))})  # fmt: skip
    SqliteRiskStore(root / "data/07_model_output/risk_store.db").publish("2018-05-14", "1", table, np.full(cards, 0.25))


AUTH = {"authorization": f"Bearer {TOKEN}"}
REQUESTS = [  # (method, path, documented path, keyword arguments, expected status)
    ("POST", "/predict", "/predict", {"json": GOOD}, 200),
    ("POST", "/predict", "/predict", {"json": {**GOOD, "tx_amount": -1}}, 400),
    ("POST", "/predict", "/predict", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 400),
    ("POST", "/predict", "/predict", {"content": b"a=1", "headers": {"content-type": "text/plain"}}, 415),
    (
        "POST",
        "/predict_batch",
        "/predict_batch",
        {"json": {"transactions": [GOOD, {**GOOD, "transaction_id": 2}]}},
        200,
    ),
    ("POST", "/predict_batch", "/predict_batch", {"json": {"transactions": [{**GOOD, "customer_id": "7"}]}}, 400),
    ("POST", "/predict_batch", "/predict_batch", {"json": {}}, 400),
    ("POST", "/predict_batch", "/predict_batch", {"content": b"[]", "headers": {"content-type": "text/csv"}}, 415),
    ("GET", "/risk/7", "/risk/{customer_id}", {}, 200),
    ("GET", "/risk/999999", "/risk/{customer_id}", {}, 404),
    ("GET", "/risk/seven", "/risk/{customer_id}", {}, 400),
    ("POST", "/admin/reload", "/admin/reload", {"json": {}}, 401),
    ("POST", "/admin/reload", "/admin/reload", {"json": {}, "headers": AUTH}, 200),
    ("POST", "/admin/reload", "/admin/reload", {"headers": AUTH}, 200),
    ("POST", "/admin/reload", "/admin/reload", {"content": b"[1]", "headers": AUTH}, 400),
    ("GET", "/metrics", "/metrics", {}, 200),
    ("GET", "/readyz", "/readyz", {}, 200),
    ("GET", "/livez", "/livez", {}, 200),
    ("GET", "/healthz", "/healthz", {}, 200),
    ("GET", "/docs.json", "/docs.json", {}, 200),
    ("GET", "/schema.json", "/schema.json", {}, 200),
    ("GET", "/", "/", {}, 200),
]


def test_the_service_answers_as_its_document_says(client, document) -> None:
    for method, path, documented, kwargs, status in REQUESTS:
        answer = client.request(method, path, **kwargs)
        where = f"{method} {path} {kwargs}: {answer.status_code} {answer.text[:300]}"
        assert answer.status_code == status, where
        declared = document["paths"][documented][method.lower()]["responses"][str(status)]["content"]
        media_type = answer.headers["content-type"].split(";")[0]
        assert media_type in declared, where
        if media_type == "application/json":
            validator = _validator(document, declared[media_type]["schema"])
            errors = [error.message for error in validator.iter_errors(answer.json())]
            assert not errors, f"{where}: {errors}"


def test_another_method_on_an_edge_route_is_a_405_naming_the_allowed_one(client) -> None:
    for method, path in (("GET", "/predict"), ("PUT", "/predict"), ("POST", "/metrics"), ("DELETE", "/risk/7"),
                         ("POST", "/docs.json")):  # fmt: skip
        answer = client.request(method, path)
        assert answer.status_code == 405 and answer.headers["allow"] == EDGE_ROUTES[path.replace("7", "{customer_id}")]
        assert method in answer.json()["error"]


@pytest.mark.slow
def test_schemathesis_finds_no_failure_against_bentoml_serve(serving_project, tmp_path) -> None:
    """`st run --checks all` on the document that `bentoml serve` publishes: every operation, positive and negative
    data, status codes, content types, response schemas, undeclared methods, the admin token."""
    _publish_risk(serving_project.root, cards=1000)
    port = free_port()
    env = project_env(serving_project.root, BENTOML_HOME=str(tmp_path / "bentoml"), BENTOML_DO_NOT_TRACK="True",
                      FRAUD_DETECTION_ADMIN_TOKEN=TOKEN)  # fmt: skip
    log = tmp_path / "serve.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "bentoml"), "serve", "fraud_detection.serving.service:FraudService",
             "--port", str(port)],
            cwd=serving_project.root, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, server, log)
        run = subprocess.run(
            [str(Path(sys.executable).parent / "st"), "run", f"{url}/docs.json", "--checks", "all",
             "--header", f"Authorization: Bearer {TOKEN}", "--max-examples", "50", "--seed", "1",
             "--request-timeout", "10", "--no-color"],
            check=False, cwd=tmp_path, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    assert run.returncode == 0, f"{run.stdout[-12000:]}\n{run.stderr[-3000:]}"
