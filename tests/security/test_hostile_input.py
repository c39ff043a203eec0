"""Hostile input against every JSON endpoint of both APIs and the two webhooks in: oversized
bodies, malformed JSON, wrong content types, unicode tricks, huge and non-finite numbers,
negative amounts, booleans for numbers, arrays for objects, SQL-looking strings, path traversal
and very long URLs. Every answer is a 4xx with the API's error shape, and nothing is written:
no row, no money moved.

The endpoints are found by walking the URL resolvers; each one that takes a body must have a
valid body below, so that a new endpoint cannot ship untried."""

import json

import pytest
import stripe
from django.conf import settings
from django.core.cache import cache

from tests.factories import make_payment_code
from tests.security.conftest import (
    ROUTES,
    SMS_SECRET,
    STRIPE_SECRET,
    VALID_BODIES,
    body_for,
    client_for,
    error_of,
    url_of,
    world_state,
)
from wallet.models import Wallet

pytestmark = pytest.mark.usefixtures("hooks_on")

WRITES = [(route, method) for route in ROUTES for method in route.methods if method != "GET"]
BODY_WRITES = [(r, m) for r, m in WRITES if VALID_BODIES.get((r.name, m)) is not None]

# Values no field of ours accepts, whatever its type.
NEVER_VALID = {
    "nul byte": "caisse\x00 1",
    "lone surrogate": "\ud800",
    "10 kB string": "a" * 10_000,
    "huge integer": 10**30,
    "negative integer": -1250,
    "minus zero": -0.0,
    "float": 12.5,
    "true": True,
    "array": [1, 2],
    "object": {"amount": 1},
    "null": None,
}
NUMBERS = {"huge integer", "negative integer", "minus zero", "float"}
# Fields where a JSON number is taken for its text (DRF's CharField) or is a valid coordinate.
NUMBERS_ACCEPTED = {"name", "reason", "legal_name", "trade_name", "address", "city", "postcode",
                    "commune_code", "latitude", "longitude"}  # fmt: skip
# Fields that may be null: a shop's coordinates are optional.
NULLABLE = {"latitude", "longitude"}
# Written literally into the JSON text: Python's json module would not write them.
LITERAL_NUMBERS = ["1e309", "-1e309", "NaN", "Infinity", "-0", "1" * 400]
# Text a free-text field may well accept: it must then be kept exactly as sent.
ODD_TEXT = {
    "sql": "' OR 1=1 --",
    "sql drop": "x'); DROP TABLE wallet_wallet; --",
    "rtl override": "caisse \u202egnp.exe",
    "homoglyph": "\u0441aisse",  # a Cyrillic "c"
    "path traversal": "../../etc/passwd",
    "zero width": "cai\u200bsse",
}


@pytest.fixture
def world(shop, alice):
    return shop, alice


def send(client, method: str, url: str, body: bytes | str, content_type="application/json"):
    cache.clear()  # the throttles must not answer in place of the validation
    return client.generic(method, url, body, content_type=content_type)


def refused(response) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    return error_of(response)


def test_every_write_endpoint_has_a_valid_body_here():
    missing = [(r.name, m) for r, m in WRITES if (r.name, m) not in VALID_BODIES]
    assert not missing, f"add these endpoints to VALID_BODIES: {missing}"
    assert len(ROUTES) >= 30


@pytest.mark.parametrize("route, method", BODY_WRITES, ids=lambda v: getattr(v, "name", v))
def test_a_field_with_a_value_of_the_wrong_kind_is_refused(route, method, world):
    url = url_of(route, world)
    client = client_for(route, world)
    fields = list(body_for(route, method, world))
    before = world_state()

    for name in fields:
        for kind, value in NEVER_VALID.items():
            if (name in NUMBERS_ACCEPTED and kind in NUMBERS) or (
                name in NULLABLE and value is None
            ):
                continue
            body = body_for(route, method, world, **{name: value})
            response = send(client, method, url, json.dumps(body))
            assert 400 <= response.status_code < 500, (name, kind, response.content[:300])
            refused(response)
        for literal in LITERAL_NUMBERS:
            if name in NUMBERS_ACCEPTED and literal not in ("NaN", "Infinity"):
                continue
            text = json.dumps(body_for(route, method, world, **{name: "@@"}))
            response = send(client, method, url, text.replace('"@@"', literal))
            assert 400 <= response.status_code < 500, (name, literal, response.content[:300])
            refused(response)

    assert world_state() == before


@pytest.mark.parametrize("route, method", BODY_WRITES, ids=lambda v: getattr(v, "name", v))
def test_a_malformed_or_mistyped_body_is_refused(route, method, world):
    url = url_of(route, world)
    client = client_for(route, world)
    valid = json.dumps(body_for(route, method, world))
    first = next(iter(json.loads(valid)))
    bodies = {
        "truncated": valid[:-1],
        "single quotes": valid.replace('"', "'"),
        "trailing garbage": valid + "}",
        "array": "[" + valid + "]",
        "string": json.dumps(valid),
        "number": "1250",
        "null": "null",
        "not utf-8": b"\xff\xfe{\x00",
        "deep nesting": "[" * 5_000 + "]" * 5_000,
        "duplicate keys, the last one bad": valid[:-1] + f', "{first}": "x", "{first}": [1]}}',
    }
    before = world_state()

    for kind, body in bodies.items():
        response = send(client, method, url, body)
        # invalid_amount: the amount field refused with the engine's own code.
        codes = {"malformed_request", "invalid_request", "invalid_amount"}
        assert refused(response)["code"] in codes, kind
    for content_type in ["text/plain", "application/xml", "application/x-www-form-urlencoded"]:
        response = send(client, method, url, valid, content_type=content_type)
        assert refused(response)["code"] == "unsupported_media_type", content_type

    assert world_state() == before


@pytest.mark.parametrize("route, method", BODY_WRITES, ids=lambda v: getattr(v, "name", v))
def test_a_body_above_the_upload_limit_is_refused(route, method, world):
    url = url_of(route, world)
    client = client_for(route, world)
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    assert limit is not None and limit <= 1_048_576
    body = json.dumps(body_for(route, method, world)) + " " * limit
    before = world_state()

    response = send(client, method, url, body)

    assert response.status_code in (400, 413)
    assert error_of(response)["code"] == "request_too_large"
    assert world_state() == before


TEXT_FIELDS = {
    ("merchant_api:api-keys", "POST"): "name",
    ("merchant_api:refund", "POST"): "reason",
    ("app_api:aidants", "POST"): "name",
}


@pytest.mark.parametrize("kind", ODD_TEXT)
@pytest.mark.parametrize("target", TEXT_FIELDS.items(), ids=lambda t: f"{t[0][0]}.{t[1]}")
def test_odd_text_is_kept_as_sent_or_refused(target, kind, world):
    (name, method), field = target
    route = next(r for r in ROUTES if r.name == name)
    client = client_for(route, world)
    value = ODD_TEXT[kind]
    wallets = Wallet.objects.count()

    body = json.dumps(body_for(route, method, world, **{field: value}))
    response = send(client, method, url_of(route, world), body)

    if response.status_code >= 400:
        refused(response)
    else:
        assert response.json()[field] == value
    assert Wallet.objects.count() == wallets  # the "DROP TABLE" was only a name


HOSTILE_IDS = {
    "traversal": "..%2F..%2Fadmin%2F",
    "dot dot": "..",
    "sql": "%27%20OR%201%3D1%20--",
    "nul byte": "card%00",
    "huge integer": "9" * 40,
    "negative": "-1",
    "long": "a" * 5_000,
    "unicode": "%E2%80%AEcard",
    "lone surrogate": "%ED%A0%80",
}
ID_ROUTES = [r for r in ROUTES if r.takes_id]


@pytest.mark.parametrize("route", ID_ROUTES, ids=lambda r: r.name)
def test_a_hostile_id_in_the_path_answers_404(route, world):
    client = client_for(route, world)
    good = url_of(route, world)
    before = world_state()

    for kind, hostile in HOSTILE_IDS.items():
        # The id is the first path segment after the collection's name.
        parts = route.route.split("/")
        position = next(i for i, part in enumerate(parts) if part.startswith("<"))
        segments = good.lstrip("/").split("/")
        segments[position] = hostile
        url = "/" + "/".join(segments)
        for method in route.methods:
            body = VALID_BODIES.get((route.name, method))
            text = json.dumps(body_for(route, method, world)) if body else ""
            response = send(client, method, url, text)
            assert response.status_code == 404, (kind, method, response.content[:200])
            assert error_of(response)["code"] == "not_found"

    assert world_state() == before


HOSTILE_QUERIES = [
    "limit=" + "9" * 40,
    "limit=-1",
    "limit=NaN",
    "cursor=%00",
    "cursor=" + "A" * 4_000,
    "cursor=..%2F..%2F",
    "cursor=cD0yMDI2LTExLTIyKzAwJTNBMDA%3D",
    "created_gte=%00",
    "created_gte=10000-01-01T00:00:00Z",
    "created_lt=2026-13-45",
    "status=%27%20OR%201%3D1%20--",
    "merchant_reference=%00",
    "authorization=%00",
    "lat=1e309&lon=0",
    "lat=NaN&lon=NaN",
    "lat=" + "9" * 400 + "&lon=1",
    "postcode=%00",
    "offset=" + "9" * 40,
    "q=" + "x" * 6_000,
]
LIST_ROUTES = [r for r in ROUTES if "GET" in r.methods]


@pytest.mark.parametrize("route", LIST_ROUTES, ids=lambda r: r.name)
def test_hostile_query_parameters_get_an_answer_not_an_error(route, world):
    client = client_for(route, world)
    url = url_of(route, world)
    before = world_state()

    for query in HOSTILE_QUERIES:
        response = send(client, "GET", f"{url}?{query}", "")
        if response.status_code >= 400:
            refused(response)
        else:
            assert response.status_code == 200, (query, response.status_code)

    assert world_state() == before


def test_a_very_long_url_answers_404_in_json(world):
    shop, alice = world
    for client, prefix in [(shop.api, "/api/merchant/v1/"), (alice.api, "/api/app/v1/")]:
        response = send(client, "GET", prefix + "x/" * 4_000, "")
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"


def test_negative_and_zero_amounts_move_no_money(world):
    shop, alice = world
    code = make_payment_code(alice.beneficiary.wallet)
    before = world_state()

    for amount in (0, -1, -(10**30)):
        for path, body in [
            ("/api/merchant/v1/authorizations", {"currency": "EUR", "payment_code": code}),
            (f"/api/merchant/v1/authorizations/{shop.held.reference}/capture", {}),
            (f"/api/merchant/v1/authorizations/{shop.held.reference}/reverse", {}),
            (f"/api/merchant/v1/authorizations/{shop.captured.reference}/refunds", {}),
        ]:
            response = send(shop.api, "POST", path, json.dumps(body | {"amount": amount}))
            assert refused(response)["field"] == "amount"
        response = send(
            alice.api, "POST", "/api/app/v1/payment-codes", json.dumps({"max_amount": amount})
        )
        assert refused(response)["field"] == "max_amount"

    assert world_state() == before


# --- the webhooks in ----------------------------------------------------------------------


def sms(client, body, content_type="application/json", secret=SMS_SECRET):
    cache.clear()
    return client.generic(
        "POST", "/hooks/sms/inbound", body, content_type=content_type,
        HTTP_X_SMS_WEBHOOK_SECRET=secret,
    )  # fmt: skip


# A number no beneficiary has: a well-formed SMS from it is answered 200 and nothing is written.
SMS_FIELDS = {"from": "+33699999999", "text": "SOLDE", "id": "msg-1"}


def test_hostile_inbound_sms_fields_are_refused_or_ignored(client, world):
    before = world_state()

    for field in SMS_FIELDS:
        for kind, value in NEVER_VALID.items():
            response = sms(client, json.dumps(SMS_FIELDS | {field: value}))
            # A short text is well-formed (the provider's id may be a number): 200, nothing done.
            well_formed = (
                isinstance(value, str)
                and kind not in {"nul byte", "lone surrogate", "10 kB string"}
            ) or (field == "id" and isinstance(value, int))
            if response.status_code == 200:
                assert well_formed, (field, kind)
            else:
                refused(response)

    assert world_state() == before


@pytest.mark.parametrize(
    "body, content_type",
    [
        ("{", "application/json"),
        ("[1, 2]", "application/json"),
        ("null", "application/json"),
        (b"\xff\xfe", "application/json"),
        ('{"from": 1e309, "text": NaN}', "application/json"),
        ("<sms/>", "application/xml"),
        ("from=%00&text=SOLDE", "application/x-www-form-urlencoded"),
        ("from=&text=SOLDE", "application/x-www-form-urlencoded"),
        ("[" * 5_000 + "]" * 5_000, "application/json"),
    ],
)
def test_a_malformed_inbound_sms_is_refused(client, world, body, content_type):
    before = world_state()

    refused(sms(client, body, content_type))

    assert world_state() == before


def test_an_oversized_inbound_sms_is_refused(client, world):
    before = world_state()

    response = sms(client, json.dumps(SMS_FIELDS) + " " * settings.DATA_UPLOAD_MAX_MEMORY_SIZE)

    assert response.status_code in (400, 413)
    assert error_of(response)["code"] == "request_too_large"
    assert world_state() == before


def stripe_post(client, payload: bytes, *, signed: bool = True):
    header = "t=1,v1=bad"
    if signed:
        header = stripe.WebhookSignature.generate_signature_header(
            payload.decode("latin-1"), STRIPE_SECRET
        )
    return client.generic(
        "POST", "/hooks/stripe", payload, content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )  # fmt: skip


@pytest.mark.parametrize(
    "payload",
    [
        b"{",
        b"[]",
        b'{"id": "evt_1"}',
        b'{"id": 1e309, "type": NaN}',
        b'{"id": "evt_\\u0000", "type": "issuing_card.created", "data": {}}',
        b'{"id": "evt_\\ud800", "type": "x\\ud800", "data": {"object": {}}}',
        b'{"id": "evt_2", "type": "issuing_card.created", "data": {"object": "\\u0000"}}',
        b'{"id": "evt_3", "type": "issuing_authorization.request", "data": [1]}',
    ],
)
@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
def test_a_hostile_stripe_event_gets_no_server_error(client, world, payload, signed):
    before = world_state()

    response = stripe_post(client, payload, signed=signed)

    if not signed:
        assert refused(response)["code"] == "invalid_signature"
        assert world_state() == before
    else:
        # Stripe signed it: it is stored and answered; what cannot be stored is refused.
        assert response.status_code in (200, 400), response.content[:300]
        if response.status_code == 400:
            refused(response)
    after = world_state()
    for label in ("wallet.Decision", "ledger.Transfer", "ledger.Entry", "money"):
        if label in before:
            assert after[label] == before[label], label


def test_an_oversized_stripe_event_is_refused(client, world):
    before = world_state()

    response = stripe_post(client, b"{" + b" " * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + b"}")

    assert response.status_code in (400, 413)
    assert error_of(response)["code"] == "request_too_large"
    assert world_state() == before
