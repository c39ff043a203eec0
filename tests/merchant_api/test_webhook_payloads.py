"""The webhook payloads the schema documents (merchant_api/webhook_events.py, written by hand)
are the bodies merchants receive: each event is emitted for real, through the API, with a test
key (the sandbox) and a live one, and its body is validated strictly against the schema of its
type (no undocumented field, no missing one)."""

import json

import pytest

from merchants.events import EventType
from merchants.models.webhooks import WebhookEvent
from tests.factories import FunderFactory, make_allocation, make_payment_code, make_program
from tests.openapi_contract import StrictValidator, generate

pytestmark = pytest.mark.django_db

APPROVE, SMALL, EXPIRES = "0000 000 001", "0000 000 002", "0000 000 012"


@pytest.fixture(scope="module")
def validator(tmp_path_factory):
    return StrictValidator(generate("merchant", tmp_path_factory.mktemp("schema") / "m.yaml"))


def every_event(client, pay) -> None:
    """Makes the merchant's API emit each event type once at least."""
    held = pay(2_000)["id"]
    client.send(f"/authorizations/{held}/reverse", {"amount": 500})
    client.send(f"/authorizations/{held}/capture", {"amount": 1_000})
    client.send(f"/authorizations/{held}/refunds", {"amount": 400})


def assert_documented(validator, events) -> set[str]:
    for event in events:
        body = json.loads(event.payload)
        schema = validator.document["webhooks"][event.type]["post"]["requestBody"]["content"][
            "application/json"
        ]["schema"]
        errors = validator.errors(body, schema)
        assert not errors, f"{event.type} (livemode {event.livemode}): {errors}"
    return {event.type for event in events}


def test_every_sandbox_event_body_is_its_documented_schema(validator, sandbox):
    def pay(amount, code=APPROVE, **extra):
        body = {"amount": amount, "currency": "EUR", "payment_code": code, **extra}
        return sandbox.send("/authorizations", body).json()

    every_event(sandbox, pay)
    pay(1_500, SMALL, partial_approval_allowed=True, metadata={"till": "2"})
    pay(1_000, "0000 000 003")
    pay(1_000, EXPIRES)
    basket = [{"amount": 700, "category": "food"}, {"amount": 300, "category": "tobacco"}]
    pay(1_000, lines=basket, partial_approval_allowed=True)

    seen = assert_documented(validator, WebhookEvent.objects.filter(livemode=False))
    baskets = [e.data.get("basket") for e in WebhookEvent.objects.filter(livemode=False)]
    assert [[line["category"] for line in b["lines"]] for b in baskets if b] == [
        ["food", "tobacco"]
    ]

    assert seen == set(EventType.values)


def test_every_live_event_body_is_its_documented_schema(validator, api, authorize):
    every_event(api, lambda amount: authorize(amount, metadata={"order": "1042"}))
    authorize(20_000, partial_approval_allowed=True)
    authorize(20_000)

    seen = assert_documented(validator, WebhookEvent.objects.filter(livemode=True))

    assert seen >= set(EventType.values) - {EventType.AUTHORIZATION_EXPIRED}


def test_a_baskets_events_carry_its_lines_and_each_funders_share_as_the_answer_does(
    validator, api, beneficiary
):
    """A basket split across two funders' aids: the authorization event, and the capture and
    refund events' authorization, carry the basket exactly as the API's answer gave it."""
    food = make_program(
        funder=FunderFactory(name="Département"), rules={"products": {"allow": ["food"]}}
    )
    hygiene = make_program(
        funder=FunderFactory(name="CCAS"), rules={"products": {"allow": ["hygiene"]}}
    )
    make_allocation(program=food, beneficiary=beneficiary, amount=10_000)
    make_allocation(program=hygiene, beneficiary=beneficiary, amount=10_000)
    answer = api.send(
        "/authorizations",
        {
            "amount": 5_000,
            "currency": "EUR",
            "payment_code": make_payment_code(beneficiary.wallet),
            "partial_approval_allowed": True,
            "lines": [
                {"amount": 3_000, "category": "food"},
                {"amount": 800, "category": "hygiene"},
                {"amount": 1_200, "category": "tobacco"},
            ],
        },
    ).json()
    api.send(f"/authorizations/{answer['id']}/capture", {})
    api.send(f"/authorizations/{answer['id']}/refunds", {"amount": 500})

    events = WebhookEvent.objects.filter(livemode=True)
    seen = assert_documented(validator, events)

    assert seen == {
        EventType.AUTHORIZATION_PARTIALLY_APPROVED,
        EventType.PAYMENT_CAPTURED,
        EventType.REFUND_SUCCEEDED,
    }
    baskets = [
        event.data.get("basket") or event.data["authorization"]["basket"] for event in events
    ]
    assert baskets == [answer["basket"]] * 3
    assert answer["basket"]["eligible_amount"] == 3_800
    assert sorted((s["funder"], s["amount"]) for s in answer["basket"]["shares"]) == [
        ("CCAS", 800),
        ("Département", 3_000),
    ]


def test_without_basket_lines_the_events_basket_is_null(api, authorize):
    held = authorize(1_000)["id"]
    api.send(f"/authorizations/{held}/capture", {})

    events = WebhookEvent.objects.filter(livemode=True)

    assert [
        event.data.get("basket", event.data.get("authorization", {}).get("basket"))
        for event in events
    ] == [None, None]
