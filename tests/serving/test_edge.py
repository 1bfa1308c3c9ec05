"""The HTTP edge's input checks (issue 20, item 8): a card id outside int64 is a 400 naming it, not a 503; an
`/admin/` request without the token is a 401 whatever its body, before BentoML parses it. At two levels: the ASGI
middleware called in-process (a stand-in service and a stand-in BentoML that parses the body as BentoML does), and
the service's ASGI app through a test client (the real BentoML routes behind the middleware)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from fraud_detection.batch.risk_store import RiskStoreUnavailable, SqliteRiskStore
from fraud_detection.serving.http import admin_authorized, edge, parse_customer_id
from fraud_detection.serving.schemas import Transaction

INT64_MAX = 2**63 - 1
EXPECTED = f"expected an integer from 0 to {INT64_MAX}"
TOKEN = "s3cret"
CARD = {"customer_id": 42, "risk": 0.5}


class Store:
    def __init__(self, failure: Exception | None = None) -> None:
        self.failure, self.looked_up = failure, []

    def lookup(self, customer_id: int) -> dict[str, Any] | None:
        self.looked_up.append(customer_id)
        if self.failure is not None:
            raise self.failure
        return {**CARD, "customer_id": customer_id} if customer_id in (42, INT64_MAX) else None


class Service:
    def __init__(self, admin_token: str = TOKEN, store: Store | None = None) -> None:
        self.admin_token, self.risk_store = admin_token, store or Store()


class BentoML:
    """What the middleware hands on to: answers as BentoML does for an API of no inputs, parsing the body first
    (a malformed one is a 400, before the API could check anything)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.calls.append((scope["path"], body))
        try:
            json.loads(body or b"{}")
            status, payload = 200, {"champion": "1"}
        except ValueError:
            status, payload = 400, {"error": "1 validation error for Input"}
        raw = json.dumps(payload).encode()
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
        )
        await send({"type": "http.response.body", "body": raw})


def call(
    service: Service, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict, BentoML]:
    """One request through the middleware in-process: (status, JSON answer, the stand-in BentoML behind it)."""
    inner = BentoML()
    app = edge(Transaction, lambda: service, 1_000_000)(inner)
    scope = {"type": "http", "method": method, "path": path,
             "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in (headers or {}).items()]}  # fmt: skip
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict] = []

    async def receive() -> dict:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], json.loads(b"".join(m.get("body", b"") for m in sent[1:])), inner


# GET /risk/{customer_id}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("99999999999999999999999", "customer_id=99999999999999999999999 is out of range"),
        (str(INT64_MAX + 1), f"customer_id={INT64_MAX + 1} is out of range"),
        ("-99999999999999999999", "customer_id=-99999999999999999999 is out of range"),
        ("-1", "customer_id=-1 is out of range"),
        ("9" * 5000, "is out of range"),  # past int()'s 4,300 digits: still a 400, not a 500
        ("abc", "customer_id='abc' is not an integer"),
        ("", "customer_id='' is not an integer"),
        ("4.2", "customer_id='4.2' is not an integer"),
        ("\u00b2", "is not an integer"),  # '²': str.isdigit says yes, int() says no
        ("\u0664\u0662", "is not an integer"),  # Arabic-Indic 42: not a card id of this API
        ("42/1", "is not an integer"),
    ],
)
def test_a_card_id_outside_int64_or_not_an_integer_is_a_400_naming_it(raw: str, expected: str) -> None:
    store = Store()
    status, answer, _ = call(Service(store=store), "GET", f"/risk/{raw}")
    assert status == 400, answer
    assert expected in answer["error"] and answer["error"].endswith(EXPECTED), answer
    assert answer["detail"] == [{"loc": ["customer_id"], "msg": answer["error"], "input": raw}]
    assert store.looked_up == [], "the store is not asked about what cannot be a card"


def test_card_ids_at_the_ends_of_int64_are_looked_up() -> None:
    assert parse_customer_id("0") == 0 and parse_customer_id("-0") == 0 and parse_customer_id("0042") == 42
    assert parse_customer_id(str(INT64_MAX)) == INT64_MAX
    status, answer, _ = call(Service(), "GET", f"/risk/{INT64_MAX}")
    assert (status, answer["customer_id"]) == (200, INT64_MAX)
    status, answer, _ = call(Service(), "GET", "/risk/7")
    assert status == 404 and "customer 7 is in no published batch" in answer["error"]


def test_a_store_outage_is_still_a_503() -> None:
    store = Store(RiskStoreUnavailable("risk store unreachable: connection refused"))
    status, answer, _ = call(Service(store=store), "GET", "/risk/42")
    assert status == 503 and answer["error"] == "risk store unavailable: risk store unreachable: connection refused"


def test_the_sqlite_store_finds_no_card_outside_int64(tmp_path) -> None:
    import numpy as np
    import polars as pl

    store = SqliteRiskStore(tmp_path / "risk.db")
    cards = pl.DataFrame({"customer_id": [1], "risk": [0.5], "transactions": [1], "riskiest_transaction": [9]})
    store.publish("2018-05-14", "1", cards, np.array([0.5]))
    try:
        assert store.lookup(1)["risk"] == 0.5
        assert store.lookup(2**63) is None and store.lookup(-(2**63) - 1) is None, "not an OverflowError"
    finally:
        store.close()


# /admin/


BAD_BODIES = [
    pytest.param(b"{not json", {"content-type": "application/json"}, id="malformed-json"),
    pytest.param(b"", {}, id="no-body"),
    pytest.param(b"a=1", {"content-type": "application/x-www-form-urlencoded"}, id="wrong-content-type"),
    pytest.param(b"{}", {"content-type": "application/json"}, id="good-body"),
]
NOT_AUTHORIZED = [
    pytest.param({}, id="no-header"),
    pytest.param({"authorization": "Bearer guess"}, id="wrong-token"),
    pytest.param({"authorization": "Bearer "}, id="empty-token"),
    pytest.param({"authorization": TOKEN}, id="no-scheme"),
    pytest.param({"authorization": f"Basic {TOKEN}"}, id="other-scheme"),
    pytest.param({"authorization": f"Bearer {TOKEN}x"}, id="longer-token"),
]


@pytest.mark.parametrize(("body", "headers"), BAD_BODIES)
@pytest.mark.parametrize("authorization", NOT_AUTHORIZED)
@pytest.mark.parametrize("path", ["/admin/reload", "/admin/anything"])
def test_admin_without_the_token_is_a_401_whatever_the_body(body, headers, authorization, path) -> None:
    status, answer, inner = call(Service(), "POST", path, body, {**headers, **authorization})
    assert status == 401 and "Authorization: Bearer <token>" in answer["error"], answer
    assert inner.calls == [], "refused before BentoML reads the body"


@pytest.mark.parametrize(("body", "headers"), BAD_BODIES)
def test_no_token_configured_refuses_every_admin_request(body, headers) -> None:
    for authorization in ({}, {"authorization": "Bearer "}, {"authorization": "Bearer  "}):
        status, _, inner = call(Service(admin_token=""), "POST", "/admin/reload", body, {**headers, **authorization})
        assert status == 401 and inner.calls == []


def test_with_the_token_the_body_is_bentomls_to_judge() -> None:
    for scheme in ("Bearer", "bearer"):
        headers = {"content-type": "application/json", "authorization": f"{scheme} {TOKEN}"}
        status, _, inner = call(Service(), "POST", "/admin/reload", b"{not json", headers)
        assert status == 400 and inner.calls == [("/admin/reload", b"{not json")], "then a bad body is a 400"
        status, answer, inner = call(Service(), "POST", "/admin/reload", b"{}", headers)
        assert (status, answer) == (200, {"champion": "1"}) and inner.calls == [("/admin/reload", b"{}")]


def test_admin_authorized_is_the_one_check() -> None:
    assert admin_authorized(f"Bearer {TOKEN}", TOKEN) and admin_authorized(f"  bearer  {TOKEN} ", TOKEN)
    assert not admin_authorized(f"Bearer {TOKEN}", "") and not admin_authorized("", "")
    assert not admin_authorized("Bearer é", TOKEN), "a non-ASCII header is compared, not raised on"


# the service's ASGI app: the real BentoML routes behind the middleware


@pytest.fixture(scope="module")
def client(serving_project):
    from fraud_detection.serving.service import FraudService

    mp = pytest.MonkeyPatch()
    mp.setenv("FRAUD_DETECTION_ADMIN_TOKEN", TOKEN)
    with serving_project.inside(), TestClient(FraudService.to_asgi(is_main=True)) as test_client:
        yield test_client
    mp.undo()


def test_the_app_answers_a_card_id_outside_int64_with_a_400(client, serving_project) -> None:
    import numpy as np
    import polars as pl

    store = SqliteRiskStore(serving_project.root / "data/07_model_output/risk_store.db")  # the catalog's
    card = pl.DataFrame({"customer_id": [10**9], "risk": [0.5], "transactions": [1], "riskiest_transaction": [1]})
    store.publish("2018-05-01", "1", card, np.array([0.5]))  # a published table (no file: no SQL was run)
    assert client.get(f"/risk/{10**9}").status_code == 200
    for raw in ("99999999999999999999999", "-99999999999999999999", str(INT64_MAX + 1)):
        answer = client.get(f"/risk/{raw}")
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] == f"customer_id={raw} is out of range; {EXPECTED}"
    assert client.get("/risk/abc").status_code == 400
    assert client.get(f"/risk/{INT64_MAX}").status_code == 404, "in range, in no batch"


@pytest.mark.parametrize(("body", "headers"), BAD_BODIES)
def test_the_app_authenticates_admin_before_it_parses_the_body(client, body, headers) -> None:
    for authorization in ({}, {"authorization": "Bearer guess"}):
        refused = client.post("/admin/reload", content=body, headers={**headers, **authorization})
        assert refused.status_code == 401, refused.text
        assert refused.json() == {"error": "admin endpoints need `Authorization: Bearer <token>`"}


def test_the_app_judges_an_authenticated_admin_body(client, serving_project) -> None:
    token = {"authorization": f"Bearer {TOKEN}"}
    malformed = client.post(
        "/admin/reload", content=b"{not json", headers={"content-type": "application/json", **token}
    )
    assert malformed.status_code == 400, malformed.text
    reloaded = client.post("/admin/reload", json={}, headers=token)
    assert reloaded.status_code == 200 and reloaded.json() == {"champion": str(serving_project.champion)}
