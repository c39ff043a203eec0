"""Test keys act on the sandbox only (merchants/sandbox.py): the documented test payment codes
give their documented answers, every object says livemode, live and test ids never cross, and
no write of a test key changes a real row or a real balance."""

from pathlib import Path

import pytest
from django.core.management import call_command

from core.money import MAX_AMOUNT
from ledger.models import Account, Entry, Transfer
from merchants.models import ApiKey, Capture, IdempotentResponse, Refund, Reversal
from merchants.models.settlement import SettlementBatch
from merchants.models.webhooks import WebhookDelivery, WebhookEndpoint, WebhookEvent
from merchants.sandbox import TEST_CODES
from wallet.models import Decision, Pocket, Wallet
from wallet.models.payment_codes import PaymentCode, PaymentCodeFailure

pytestmark = pytest.mark.django_db

URL = "https://shop.example.org/hooks/aidwallet"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "sandbox.md"

APPROVE, SMALL, LIMITED = "0000 000 001", "0000 000 002", "0000 000 009"


def pay(client, code: str, amount: int = 1250, *, status: int = 201, **extra) -> dict:
    body = {"amount": amount, "currency": "EUR", "payment_code": code, **extra}
    response = client.send("/authorizations", body)
    assert response.status_code == status, response.content
    return response.json()


# --- each documented magic value gives its documented answer ---------------------------------

DECLINES = [
    ("0000 000 003", "aid_expired"),
    ("0000 000 004", "aid_not_yet_valid"),
    ("0000 000 005", "outside_allowed_hours"),
    ("0000 000 006", "merchant_category_not_allowed"),
    ("0000 000 007", "merchant_not_accepted"),
    ("0000 000 008", "outside_zone"),
    ("0000 000 010", "no_aid_available"),
    ("0000 000 011", "wallet_frozen"),
]


@pytest.mark.parametrize(("code", "reason"), DECLINES)
def test_each_declining_test_code_declines_with_its_code(sandbox, code, reason):
    body = pay(sandbox, code)
    assert (body["status"], body["decline"]["code"], body["livemode"]) == (
        "declined", reason, False,
    )  # fmt: skip
    assert body["decline"]["message"]
    assert body["capture_status"] is None and body["approved_amount"] == 0


@pytest.mark.parametrize(
    ("code", "amount", "partial", "status", "approved", "reason"),
    [
        (APPROVE, 1250, False, "approved", 1250, None),
        (APPROVE, 50_000, False, "approved", 50_000, None),
        (APPROVE, 60_000, False, "declined", 0, "insufficient_funds"),
        (APPROVE, 60_000, True, "partially_approved", 50_000, "insufficient_funds"),
        (SMALL, 1000, False, "approved", 1000, None),
        (SMALL, 1500, True, "partially_approved", 1000, "insufficient_funds"),
        (SMALL, 1500, False, "declined", 0, "insufficient_funds"),
        (LIMITED, 100, False, "approved", 100, None),
        (LIMITED, 150, False, "declined", 0, "limit_exceeded"),
        (LIMITED, 150, True, "partially_approved", 100, "limit_exceeded"),
    ],
)
def test_amounts_approve_partially_approve_or_decline_as_documented(
    sandbox, code, amount, partial, status, approved, reason
):
    body = pay(sandbox, code, amount, partial_approval_allowed=partial)
    assert (body["status"], body["approved_amount"]) == (status, approved)
    assert (body["decline"] or {}).get("code") == reason
    assert body["amount_held"] == approved


def test_the_expiring_test_code_approves_then_expires_at_once(sandbox):
    body = pay(sandbox, "0000 000 012", 1000)
    assert (body["status"], body["capture_status"], body["amount_held"]) == (
        "approved", "expired", 0,
    )  # fmt: skip
    refused = sandbox.send(f"/authorizations/{body['id']}/capture")
    assert refused.json()["error"]["code"] == "authorization_not_capturable"


def test_another_currency_is_declined_currency_not_supported(sandbox):
    body = pay(sandbox, APPROVE, currency="USD")
    assert (body["status"], body["decline"]["code"]) == ("declined", "currency_not_supported")


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("0000 000 090", 410, "payment_code_expired"),
        ("0000 000 091", 409, "payment_code_used"),
        ("0000 000 092", 422, "payment_code_amount_exceeded"),
        ("0000 000 099", 404, "payment_code_invalid"),
        ("12", 400, "payment_code_malformed"),
    ],
)
def test_error_test_codes_answer_their_error(sandbox, code, status, error):
    body = pay(sandbox, code, status=status)
    assert body["error"]["code"] == error
    assert not Decision.objects.exists()


@pytest.mark.parametrize("amount", [0, MAX_AMOUNT + 1])
def test_an_amount_out_of_bounds_is_a_400_on_amount(sandbox, amount):
    body = pay(sandbox, APPROVE, amount, status=400)
    assert body["error"]["field"] == "amount"


def test_the_lifecycle_errors_of_the_sandbox_are_the_live_ones(sandbox):
    declined = pay(sandbox, "0000 000 003")["id"]
    refused = sandbox.send(f"/authorizations/{declined}/capture")
    assert (refused.status_code, refused.json()["error"]["code"]) == (
        409, "authorization_not_capturable",
    )  # fmt: skip
    held = pay(sandbox, APPROVE, 1000)["id"]
    too_much = sandbox.send(f"/authorizations/{held}/capture", {"amount": 1001})
    assert too_much.json()["error"]["code"] == "exceeds_hold_amount"
    assert sandbox.send(f"/authorizations/{held}/capture", {"amount": 600}).status_code == 201
    again = sandbox.send(f"/authorizations/{held}/capture")
    assert again.json()["error"]["code"] == "authorization_already_captured"
    over = sandbox.send(f"/authorizations/{held}/refunds", {"amount": 601})
    assert over.json()["error"]["code"] == "exceeds_refundable_amount"


def test_the_whole_lifecycle_follows_the_live_rules(sandbox):
    auth = pay(sandbox, APPROVE, 3000)["id"]
    reversed_ = sandbox.send(f"/authorizations/{auth}/reverse", {"amount": 1000})
    assert reversed_.status_code == 201 and reversed_.json()["livemode"] is False
    assert sandbox.read(f"/authorizations/{auth}").json()["amount_held"] == 2000
    captured = sandbox.send(f"/authorizations/{auth}/capture", {"amount": 1500})
    assert captured.status_code == 201
    state = sandbox.read(f"/authorizations/{auth}").json()
    assert (state["amount_held"], state["capture_status"]) == (0, "captured")
    for amount in (500, 1000):
        refund = sandbox.send(f"/authorizations/{auth}/refunds", {"amount": amount})
        assert refund.status_code == 201 and refund.json()["livemode"] is False
    final = sandbox.read(f"/authorizations/{auth}").json()
    assert (final["capture_status"], final["amount_refunded"]) == ("refunded", 1500)
    one_step = pay(sandbox, APPROVE, 700, capture=True)
    assert (one_step["capture_status"], one_step["amount_captured"]) == ("captured", 700)


@pytest.mark.parametrize(
    ("event", "steps"),
    [
        ("authorization.approved", [(APPROVE, 1000, None)]),
        ("authorization.partially_approved", [(SMALL, 1500, None)]),
        ("authorization.declined", [("0000 000 006", 1000, None)]),
        ("payment.captured", [(APPROVE, 1000, "capture")]),
        ("authorization.reversed", [(APPROVE, 1000, "reverse")]),
        ("refund.succeeded", [(APPROVE, 1000, "capture"), (None, 400, "refunds")]),
        ("authorization.expired", [("0000 000 012", 1000, None)]),
    ],
)
def test_each_event_goes_to_the_test_endpoint_only(sandbox, api, event, steps):
    test_hook = sandbox.send("/webhook-endpoints", {"url": URL}).json()
    live_hook = api.send("/webhook-endpoints", {"url": URL}).json()
    assert (test_hook["livemode"], live_hook["livemode"]) == (False, True)
    auth = None
    for code, amount, operation in steps:
        if code is not None:
            auth = pay(sandbox, code, amount, partial_approval_allowed=True)["id"]
        if operation is not None:
            body = {"amount": amount} if operation == "refunds" else {}
            sandbox.send(f"/authorizations/{auth}/{operation}", body)
    sent = WebhookDelivery.objects.filter(event__type=event)
    assert [d.endpoint_id for d in sent] == [test_hook["id"]]
    assert sent.get().event.livemode is False
    assert '"livemode":false' in sent.get().event.payload


def test_every_test_code_is_in_the_docs_and_the_schema(client):
    docs = DOCS.read_text()
    schema = client.get("/api/merchant/v1/schema").content.decode()
    for test in TEST_CODES.values():
        assert test.code in docs and test.answer in docs
        assert test.code in schema


# --- live and test never cross -----------------------------------------------------------------


def test_live_ids_answer_404_to_a_test_key_and_test_ids_to_a_live_key(
    api, sandbox, authorize, merchant
):
    live = authorize(1000)["id"]
    test = pay(sandbox, APPROVE, 1000)["id"]
    for caller, other in ((sandbox, live), (api, test)):
        assert caller.read(f"/authorizations/{other}").status_code == 404
        for operation in ("capture", "reverse"):
            assert caller.send(f"/authorizations/{other}/{operation}").status_code == 404
        assert caller.send(f"/authorizations/{other}/refunds", {"amount": 1}).status_code == 404
    live_capture = api.send(f"/authorizations/{live}/capture").json()["id"]
    test_capture = sandbox.send(f"/authorizations/{test}/capture").json()["id"]
    assert sandbox.read(f"/captures/{live_capture}").status_code == 404
    assert api.read(f"/captures/{test_capture}").status_code == 404
    live_hook = api.send("/webhook-endpoints", {"url": URL}).json()["id"]
    test_hook = sandbox.send("/webhook-endpoints", {"url": URL}).json()["id"]
    assert sandbox.send(f"/webhook-endpoints/{live_hook}/disable").status_code == 404
    assert api.send(f"/webhook-endpoints/{test_hook}/disable").status_code == 404
    live_key = ApiKey.objects.filter(merchant=merchant, mode="live").first().pk
    assert sandbox.send(f"/api-keys/{live_key}/revoke").status_code == 404


def test_lists_with_a_test_key_show_test_objects_only(api, sandbox, authorize, merchant):
    live = authorize(1000)["id"]
    api.send(f"/authorizations/{live}/capture")
    api.send(f"/authorizations/{authorize(500)['id']}/reverse")
    api.send("/webhook-endpoints", {"url": URL})
    SettlementBatch.objects.create(
        merchant=merchant, currency="EUR", period_end="2026-11-22T00:00Z", net=0
    )
    test = pay(sandbox, APPROVE, 1000)["id"]
    sandbox.send(f"/authorizations/{test}/capture")
    sandbox.send(f"/authorizations/{test}/refunds", {"amount": 100})
    for path in ("/authorizations", "/captures", "/refunds", "/reversals", "/settlements"):
        page = sandbox.read(path).json()
        assert page["livemode"] is False
        assert all(item["livemode"] is False for item in page["results"])
        assert api.read(path).json()["livemode"] is True
        assert all(item["livemode"] is True for item in api.read(path).json()["results"])
    assert [a["id"] for a in sandbox.read("/authorizations").json()["results"]] == [test]
    assert sandbox.read("/reversals").json()["results"] == []
    assert sandbox.read("/settlements").json()["results"] == []
    assert sandbox.read("/webhook-endpoints").json() == {"livemode": False, "data": []}
    keys = sandbox.read("/api-keys").json()
    assert keys["livemode"] is False and {k["mode"] for k in keys["data"]} == {"test"}


def test_a_test_key_creates_test_keys_only(sandbox):
    created = sandbox.send("/api-keys", {"name": "CI"})
    assert (created.status_code, created.json()["livemode"]) == (201, False)
    assert created.json()["secret"].startswith("sk_test_")
    refused = sandbox.send("/api-keys", {"name": "CI", "mode": "live"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (
        403, "live_key_requires_live_key",
    )  # fmt: skip


def test_the_same_idempotency_key_in_live_and_test_is_two_operations(api, sandbox, authorize):
    test = sandbox.send(
        "/authorizations",
        {"amount": 1000, "currency": "EUR", "payment_code": APPROVE},
        key="order-1",
    )
    live = api.send(
        "/authorizations",
        {"amount": 1000, "currency": "EUR", "payment_code": APPROVE},
        key="order-1",
    )
    # The live key does not get the test answer back: the test code is no live code.
    assert test.status_code == 201 and live.status_code == 404
    assert "Idempotent-Replayed" not in live
    # Nor can a live key name the test key's stored answer: its prefix is not ASCII.
    lookalike = api.send(
        "/authorizations",
        {"amount": 1000, "currency": "EUR", "payment_code": APPROVE},
        key="test·order-1",
    )
    assert lookalike.status_code == 400 and "Idempotent-Replayed" not in lookalike


# --- a test key changes no real row and no real balance ---------------------------------------


def _real_world() -> dict:
    """Every real row a merchant API write could change, and every account's numbers."""
    live = {"livemode": True}
    return {
        "accounts": list(Account.objects.order_by("pk").values_list("pk", "balance", "pending")),
        "transfers": Transfer.objects.count(),
        "entries": Entry.objects.count(),
        "wallets": list(Wallet.objects.order_by("pk").values_list("pk", "is_frozen")),
        "pockets": Pocket.objects.count(),
        "codes": list(PaymentCode.objects.order_by("pk").values()),
        "code_failures": PaymentCodeFailure.objects.count(),
        "decisions": Decision.objects.filter(**live).count(),
        "captures": Capture.objects.filter(**live).count(),
        "reversals": Reversal.objects.filter(**live).count(),
        "refunds": Refund.objects.filter(**live).count(),
        "endpoints": list(WebhookEndpoint.objects.filter(**live).values()),
        "events": WebhookEvent.objects.filter(**live).count(),
        "deliveries": WebhookDelivery.objects.filter(endpoint__livemode=True).count(),
        "batches": SettlementBatch.objects.count(),
        "live_keys": list(ApiKey.objects.filter(mode="live").values("pk", "revoked_at")),
        "replays": IdempotentResponse.objects.exclude(key__startswith="test·").count(),
    }


def test_every_write_of_a_test_key_leaves_the_real_world_unchanged(
    api, sandbox, authorize, payment_code
):
    live = authorize(3000)["id"]
    api.send(f"/authorizations/{live}/capture", {"amount": 2000})
    api.send("/webhook-endpoints", {"url": URL})
    real_code = payment_code()  # a live code typed with a test key is not a test code
    before = _real_world()

    def write(path, body=None):
        response = sandbox.send(path, body, key=f"k-{path}-{body}")
        assert response.status_code in (200, 201, 404, 409, 410, 422), response.content
        return response.json()

    hook = write("/webhook-endpoints", {"url": URL})
    write(f"/webhook-endpoints/{hook['id']}/disable")
    key = write("/api-keys", {"name": "CI"})
    write(f"/api-keys/{key['id']}/revoke")
    write("/authorizations", {"amount": 1000, "currency": "EUR", "payment_code": real_code})
    for code, _test in TEST_CODES.items():
        write("/authorizations", {"amount": 1500, "currency": "EUR", "payment_code": code,
                                  "partial_approval_allowed": True})  # fmt: skip
    auth = write("/authorizations", {"amount": 900, "currency": "EUR", "payment_code": APPROVE})
    write(f"/authorizations/{auth['id']}/reverse", {"amount": 100})
    write(f"/authorizations/{auth['id']}/capture", {"amount": 500})
    write(f"/authorizations/{auth['id']}/refunds", {"amount": 200})
    write(f"/authorizations/{live}/refunds", {"amount": 100})  # a live id: 404

    assert _real_world() == before
    assert Decision.objects.filter(livemode=False, wallet__isnull=False).count() == 0
    call_command("ledger", "verify")
    call_command("reconcile")  # raises CommandError on a discrepancy
