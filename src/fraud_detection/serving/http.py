"""The HTTP edge of the real-time path, as plain ASGI: `POST /predict`, `GET /risk/{customer_id}`, `GET /metrics`,
`GET /docs.json` (the OpenAPI document of every route: serving/openapi.py), the admin token, the request body limit
and content type.

`/predict` is answered by an ASGI middleware of the BentoML service (`add_asgi_middleware`) instead of a
`@bentoml.api`: BentoML's per-request machinery around an API (IO models built per call, a context object, a
streamed response, its router and exception layers) costs about 0.5 ms of CPU per request on a 2-core laptop,
more than the whole scoring path. So `/predict` still runs inside `bentoml serve` (BentoML's workers, timeout,
lifecycle) on the service instance that BentoML created, parses with the same pydantic models and answers errors
in the same shape as the BentoML APIs: `{"error": ..., "detail": [{"loc": [...], "msg": ..., "input": ...}]}`.
Every answer is timed into `/metrics`.

The admin token is checked here, before BentoML sees an `/admin/` request: BentoML parses a request's body into
the API's inputs before it calls the API, so a check in the API alone answers a malformed body with a 400 to anyone,
and an unauthenticated caller learns about the endpoint before being refused. Here any `/admin/` request without the
token is a 401, whatever its body (the API checks it again, with the same `admin_authorized`).

Another method on the edge's own paths is a 405 naming the allowed one (`Allow`); a body that is not JSON, for
`/predict` or a BentoML API, a 415 (BentoML would read any content type as JSON).
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Any

from pydantic import ValidationError

from fraud_detection.serving.metrics import exposition, observe
from fraud_detection.serving.schemas import Transaction

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = Sequence[tuple[bytes, bytes]]


RISK_PREFIX = "/risk/"
ADMIN_PREFIX = "/admin/"
ADMIN_REFUSED = "admin endpoints need `Authorization: Bearer <token>`"
# the edge's own routes, and the method each answers (others: 405)
EDGE_ROUTES = {"/predict": "POST", "/metrics": "GET", "/docs.json": "GET", RISK_PREFIX + "{customer_id}": "GET"}
CUSTOMER_IDS = (0, 2**63 - 1)  # a card id: a non-negative int64, as /predict and ingestion accept it


class TooLarge(ValueError):
    pass


def edge(
    transaction_type: type[Transaction],
    service: Callable[[], Any],
    max_body_bytes: int,
    document: Callable[[], bytes] | None = None,
    api_routes: Collection[str] = (),
) -> type:
    """The ASGI middleware in front of BentoML's routes: it answers `POST /predict` (on `service()`, the instance
    BentoML created, resolved per request), `GET /risk/{customer_id}` (the batch stage's published risk table),
    `GET /metrics` and `GET /docs.json` (`document()`, if given) itself; it refuses any `/admin/` request without
    the admin token (`service().admin_token`) with a 401 before its body is read, any request body over
    `max_body_bytes` with a 413 before it is read (a declared length from the header; a chunked body is read up to
    the limit and handed on whole), and a body that is not JSON for the BentoML APIs at `api_routes` with a 415.
    Everything else goes on to BentoML (`/predict_batch`, `/admin/reload` with the token, `/readyz` ...)."""

    async def predict(scope: Scope, receive: Receive, send: Send) -> int:
        if refused := _not_json(scope):
            return await _answer(send, 415, refused)
        try:
            body = await read_body(receive, max_body_bytes)
            transaction = transaction_type.model_validate_json(body)
        except TooLarge as error:
            return await _answer(send, 413, {"error": str(error)})
        except ValidationError as error:
            return await _answer(send, 400, validation_error(error))
        prediction = service().detector.predict(transaction)
        return await _send(send, 200, prediction.model_dump_json().encode())

    async def risk(scope: Scope, receive: Receive, send: Send) -> int:
        raw = scope["path"].removeprefix(RISK_PREFIX)
        customer_id = parse_customer_id(raw)
        if isinstance(customer_id, str):
            detail = [{"loc": ["customer_id"], "msg": customer_id, "input": raw}]
            return await _answer(send, 400, {"error": customer_id, "detail": detail})
        try:
            card = service().risk_store.lookup(customer_id)
        except Exception as error:  # the store's own errors (a file being replaced, Redis down): a clear 503
            return await _answer(send, 503, {"error": f"risk store unavailable: {error}"})
        if card is None:
            return await _answer(send, 404, {"error": f"customer {customer_id} is in no published batch; expected a "
                                                      "card the batch_predict stage has scored"})  # fmt: skip
        return await _send(send, 200, json.dumps(card).encode())

    async def prometheus(scope: Scope, receive: Receive, send: Send) -> int:
        return await _send(send, 200, exposition(), b"text/plain; version=0.0.4; charset=utf-8")

    async def openapi(scope: Scope, receive: Receive, send: Send) -> int:
        return await _send(send, 200, document())

    routes = {("POST", "/predict"): predict, ("GET", "/metrics"): prometheus}
    if document is not None:
        routes["GET", "/docs.json"] = openapi
    json_bodies = frozenset(api_routes)

    class Edge:
        def __init__(self, app: ASGIApp) -> None:
            self.app = app

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return await self.app(scope, receive, send)
            if scope["path"].startswith(ADMIN_PREFIX) and not admin_authorized(
                _header(scope, b"authorization"), service().admin_token
            ):
                return await _answer(send, 401, {"error": ADMIN_REFUSED})  # before BentoML reads the body
            route = routes.get((scope["method"], scope["path"]))
            if route is None and scope["method"] == "GET" and scope["path"].startswith(RISK_PREFIX):
                route = risk
            if route is not None:
                start = time.perf_counter()
                status = await route(scope, receive, send)
                observe(RISK_PREFIX + "{customer_id}" if route is risk else scope["path"], status,
                        time.perf_counter() - start)  # fmt: skip
                return None
            return await self._onward(scope, receive, send)

        async def _onward(self, scope: Scope, receive: Receive, send: Send) -> None:
            """A request the edge does not answer itself: a 405 on its own paths, else on to BentoML."""
            own = RISK_PREFIX + "{customer_id}" if scope["path"].startswith(RISK_PREFIX) else scope["path"]
            if own in EDGE_ROUTES:
                allowed = EDGE_ROUTES[own]
                refused = {"error": f"method {scope['method']} on {own}; expected {allowed}"}
                return await _answer(send, 405, refused, [(b"allow", allowed.encode())])
            if scope["method"] in ("GET", "HEAD"):
                return await self.app(scope, receive, send)
            if scope["path"] in json_bodies and (refused := _not_json(scope)):
                return await _answer(send, 415, refused)
            return await self._limited(scope, receive, send)

        async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
            declared = _header(scope, b"content-length")
            if declared.isdigit():
                if int(declared) > max_body_bytes:
                    return await _answer(send, 413, _too_large(int(declared), max_body_bytes))
                return await self.app(scope, receive, send)
            try:
                body = await read_body(receive, max_body_bytes)
            except TooLarge as error:
                return await _answer(send, 413, {"error": str(error)})
            replayed = False

            async def replay() -> dict[str, Any]:
                nonlocal replayed
                if replayed:
                    return await receive()  # after the body: only a disconnect can come
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            return await self.app(scope, replay, send)

    return Edge


async def read_body(receive: Receive, max_body_bytes: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body_bytes:
            raise TooLarge(_too_large(size, max_body_bytes)["error"])
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def admin_authorized(authorization: str, token: str) -> bool:
    """Whether an `Authorization` header carries the admin token (`Bearer <token>`, compared in constant time).
    No token configured: nothing is authorized."""
    scheme, _, supplied = authorization.strip().partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(supplied.strip().encode(), token.encode())


def parse_customer_id(raw: str) -> int | str:
    """The card id of `GET /risk/{customer_id}`, or why `raw` is none (the message of a 400)."""
    low, high = CUSTOMER_IDS
    expected = f"expected an integer from {low} to {high}"
    shown = raw if len(raw) <= 64 else f"{raw[:64]}..."
    negative = raw.startswith("-")
    digits = raw[1:] if negative else raw
    if not (digits.isascii() and digits.isdigit()):  # ASCII: str.isdigit also takes '²' and other scripts' digits
        return f"customer_id={shown!r} is not an integer; {expected}"
    digits = digits.lstrip("0") or "0"
    # the length first: int() refuses a string of 4,300 digits or more (a 500 instead of this 400)
    if (negative and digits != "0") or len(digits) > len(str(high)) or int(digits) > high:
        return f"customer_id={shown} is out of range; {expected}"
    return int(digits)


def customer_id_pattern() -> str:
    """The regular expression of the strings `parse_customer_id` accepts: decimal digits (leading zeros allowed) up
    to the largest card id, or a negative zero."""
    high = str(CUSTOMER_IDS[1])
    shorter = f"\\d{{1,{len(high) - 1}}}"
    below = [f"{high[:i]}[0-{int(d) - 1}]\\d{{{len(high) - i - 1}}}" for i, d in enumerate(high) if d != "0"]
    return f"^(-0+|0*({'|'.join([shorter, *below, high])}))$"


def validation_error(error: ValidationError) -> dict[str, Any]:
    detail = error.errors(include_url=False, include_context=False)
    return {"error": f"{error.error_count()} validation error(s) for {error.title}", "detail": detail}


def _too_large(size: int, limit: int) -> dict[str, str]:
    return {"error": f"request body of {size} bytes or more; expected at most {limit} (params serve.max_body_bytes)"}


def _not_json(scope: Scope) -> dict[str, str] | None:
    """The 415 answer for a request whose declared body is not JSON (no content type: read as JSON)."""
    content_type = _header(scope, b"content-type").split(";")[0].strip().lower()
    if content_type in ("", "application/json"):
        return None
    return {"error": f"content-type {content_type}; expected application/json"}


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return ""


async def _answer(send: Send, status: int, payload: dict[str, Any], headers: Headers = ()) -> int:
    return await _send(send, status, json.dumps(payload, default=str).encode(), headers=headers)


async def _send(
    send: Send, status: int, body: bytes, content_type: bytes = b"application/json", headers: Headers = ()
) -> int:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return status
