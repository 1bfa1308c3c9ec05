"""The service's OpenAPI document, served at `GET /docs.json` (and read by the Swagger page at `/`).

BentoML's own document lists only the `@bentoml.api` routes, and loses what their models say (its batch answer is
a string; its error `detail` a string). This one lists every route the service answers: the edge's (`/predict`,
`/risk/{customer_id}`, `/metrics`, `/docs.json`: serving/http.py), the BentoML APIs (`/predict_batch`,
`/admin/reload`) and BentoML's own routes (health, the Swagger page, `/schema.json`), each with the JSON schema of
the pydantic model that parses the request or writes the answer (the BentoML APIs' input models are BentoML's own,
built from the method signatures). OpenAPI 3.1, whose schemas are JSON Schema 2020-12: pydantic's, as they are.
Built once per worker, on the first request for it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from fraud_detection.serving.http import customer_id_pattern
from fraud_detection.serving.schemas import PREDICTIONS, ErrorBody, Prediction, RiskCard

OPENAPI_VERSION = "3.1.0"
REF = "#/components/schemas/{model}"
ADMIN_AUTH = "adminToken"
JSON, TEXT, HTML = "application/json", "text/plain", "text/html"
# the answers of every scoring route: a refused body (400), one over serve.max_body_bytes (413), not JSON (415), and
# BentoML's timeout (serve.request_timeout_s: 504)
REFUSED = {
    "400": "a field refused: `detail` names each field, its value and what was expected",
    "413": "the body is over serve.max_body_bytes",
    "415": "the content type is not application/json",
    "504": "not answered within serve.request_timeout_s",
}


def openapi_document(
    *,
    title: str,
    version: str,
    transaction: type[BaseModel],
    batch_input: type[BaseModel],
    admin_input: type[BaseModel],
    admin_token_env: str,
) -> dict[str, Any]:
    """The document: `transaction` parses `POST /predict`, `batch_input` and `admin_input` the bodies of the BentoML
    APIs (`FraudService.apis[name].input_spec`); the admin token comes from the environment variable named."""
    named = {"Transaction": transaction, "PredictBatchRequest": batch_input, "AdminReloadRequest": admin_input,
             "Prediction": Prediction, "RiskCard": RiskCard, "ErrorBody": ErrorBody}  # fmt: skip
    schemas = component_schemas(named, requests=(transaction, batch_input, admin_input))
    ref = {model: {"$ref": REF.format(model=name)} for name, model in named.items()}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version, "description": "Real-time card fraud scoring (docs/serving.md)."},
        "paths": {
            **_scoring_paths(ref, transaction, batch_input),
            **_admin_paths(ref[admin_input], ref[ErrorBody]),
            **_infrastructure_paths(),
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                ADMIN_AUTH: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": f"the token in the server's environment variable {admin_token_env}",
                }
            },
        },
    }


def component_schemas(named: dict[str, type[BaseModel]], requests: tuple[type[BaseModel], ...]) -> dict[str, Any]:
    """Each model's JSON schema under its name, with the models it nests (validation mode for what the service
    parses, serialization mode for what it answers)."""
    schemas: dict[str, Any] = {}
    for name, model in named.items():
        schema = model.model_json_schema(ref_template=REF, mode="validation" if model in requests else "serialization")
        for nested, definition in {**schema.pop("$defs", {}), name: schema}.items():
            if schemas.setdefault(nested, definition) != definition:
                raise ValueError(f"two schemas named {nested}; expected one model per name")
    return schemas


Refs = dict[type, dict[str, str]]  # a model's {"$ref": ...}


def _scoring_paths(ref: Refs, transaction: type[BaseModel], batch_input: type[BaseModel]) -> dict[str, Any]:
    predictions = PREDICTIONS.json_schema(mode="serialization", ref_template=REF)
    predictions.pop("$defs", None)
    customer_id = {"type": "string", "pattern": customer_id_pattern(), "description": "a card id: 0 to 2^63-1"}
    return {
        "/predict": {
            "post": _operation(
                "predict",
                "Score one transaction.",
                ref[transaction],
                {"200": _json("the prediction", ref[Prediction]), **_errors(REFUSED, ref[ErrorBody])},
            )
        },
        "/predict_batch": {
            "post": _operation(
                "predict_batch",
                "Score a list of transactions (up to serve.max_batch), in time order; answers in request order.",
                ref[batch_input],
                {"200": _json("one prediction per transaction", predictions), **_errors(REFUSED, ref[ErrorBody])},
            )
        },
        "/risk/{customer_id}": {
            "get": {
                "operationId": "risk",
                "summary": "The card's risk in the latest batch that scored it (the batch_predict stage).",
                "parameters": [{"name": "customer_id", "in": "path", "required": True, "schema": customer_id}],
                "responses": {
                    "200": _json("the card's risk", ref[RiskCard]),
                    **_errors(
                        {
                            "400": "customer_id is not an integer from 0 to 2^63-1",
                            "404": "no published batch scored this card",
                            "503": "the risk store cannot be read",
                            "504": REFUSED["504"],
                        },
                        ref[ErrorBody],
                    ),
                },
            }
        },
    }


def _admin_paths(admin_input: dict[str, str], error: dict[str, str]) -> dict[str, Any]:
    operation = _operation(
        "admin_reload",
        "Load the models the registry's serving plan names now; answers the versions served, by variant.",
        admin_input,
        {
            "200": _json("the versions served", {"type": "object", "additionalProperties": {"type": "string"}}),
            **_errors({"401": "no valid admin token", **REFUSED}, error),
        },
    )
    operation["requestBody"]["required"] = False
    operation["security"] = [{ADMIN_AUTH: []}]
    return {"/admin/reload": {"post": operation}}


def _infrastructure_paths() -> dict[str, Any]:
    def get(operation_id: str, summary: str, responses: dict[str, Any]) -> dict[str, Any]:
        return {"get": {"operationId": operation_id, "summary": summary, "responses": responses}}

    text = {"type": "string"}
    return {
        "/metrics": get("metrics", "Prometheus metrics of all workers.", {"200": _body("the exposition", TEXT, text)}),
        "/docs.json": get("openapi", "This document.", {"200": _body("the document", JSON, {"type": "object"})}),
        "/schema.json": get(
            "schema",
            "BentoML's description of its APIs (for BentoML clients).",
            {"200": _body("BentoML's schema", JSON, {"type": "object"})},
        ),
        "/": get("index", "The Swagger page of this document.", {"200": _body("the page", HTML, text)}),
        "/livez": get("livez", "Liveness: the worker answers.", {"200": _body("alive", TEXT, text)}),
        "/healthz": get("healthz", "Liveness (the same as /livez).", {"200": _body("alive", TEXT, text)}),
        "/readyz": get(
            "readyz",
            "Readiness: the models are loaded and the online store answers.",
            {"200": _body("ready", TEXT, text), "503": _body("not ready: the reason", TEXT, text)},
        ),
    }


def _operation(operation_id: str, summary: str, request: dict[str, str], responses: dict[str, Any]) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "summary": summary,
        "requestBody": {"required": True, "content": {JSON: {"schema": request}}},
        "responses": responses,
    }


def _errors(descriptions: dict[str, str], error: dict[str, str]) -> dict[str, Any]:
    return {status: _json(description, error) for status, description in descriptions.items()}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return _body(description, JSON, schema)


def _body(description: str, media_type: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": schema}}}
