"""Captures and refunds through HTTP on PostgreSQL's fast path (merchants/hot_path.py, one
statement) and on the ORM's path: the same operations write the same rows, and the answer a
retry gets commits with the money (a reversal's too, on the ORM's path)."""

import json
import uuid

import pytest
from django.core.management import call_command

from funders.services import allocation_revoke
from ledger.idempotency import fingerprint
from ledger.models import Transfer
from merchant_api import idempotency
from merchants import tasks as webhook_tasks
from merchants.models import Capture, IdempotentResponse, Refund, Reversal
from merchants.models.webhooks import WebhookEndpoint, WebhookEvent
from tests.factories import (
    BeneficiaryFactory,
    FunderFactory,
    make_allocation,
    make_payment_code,
    make_program,
)
from tests.markers import postgresql_only
from tests.merchant_api.conftest import FOOD_IN_ISERE
from wallet.models import Decision
from wallet.models.notifications import CaptureNotice

pytestmark = pytest.mark.django_db(transaction=True)

# What differs between two worlds by construction: ids, references, instants.
_UNIQUE = {"created", "created_at", "id", "reference"}


def _world(tag, funder):
    beneficiary = BeneficiaryFactory()
    for name, amount in (("Petite", 3_000), ("Grande", 6_000)):
        program = make_program(funder=funder, rules=FOOD_IN_ISERE, name=f"{name} {tag}")
        make_allocation(program=program, beneficiary=beneficiary, amount=amount)
    return beneficiary.wallet


def _operate(api, wallet, tag):
    """Payments split over both aids, captured whole or in part, refunded across captures, and
    refunded once the aids have ended (to their programs). Returns every answer."""
    answers = []

    def send(path, body, name):
        response = api.send(path, body, key=f"{tag}{name}")
        assert response.status_code == 201, response.content
        answers.append(response.json())
        return response.json()

    def pay(amount, name):
        code = make_payment_code(wallet)
        return send(
            "/authorizations", {"amount": amount, "currency": "EUR", "payment_code": code}, name
        )["id"]

    split, whole, part = pay(8_000, "a1"), pay(500, "a2"), pay(400, "a3")
    send(f"/authorizations/{split}/capture", {"amount": 7_000}, "c1")
    send(f"/authorizations/{whole}/capture", {}, "c2")
    send(f"/authorizations/{part}/capture", {"amount": 100}, "c3")
    send(f"/authorizations/{split}/refunds", {"amount": 2_000, "reason": "returned"}, "r1")
    send(f"/authorizations/{split}/refunds", {"amount": 4_500}, "r2")
    for pocket in wallet.pockets.order_by("pk"):
        allocation_revoke(allocation=pocket.allocation, reason="ended")
    send(f"/authorizations/{split}/refunds", {"amount": 500}, "r3")
    send(f"/authorizations/{whole}/refunds", {"amount": 500}, "r4")
    return answers


def _written(wallet, tag, answers, queued):
    """Every row the operations on `wallet` wrote, ids, instants and the world's tag taken
    out; accounts named by their part (the n-th pocket, the n-th program, the merchant)."""
    pockets = list(wallet.pockets.select_related("allocation__program").order_by("pk"))
    roles = {pocket.account_id: f"pocket {i}" for i, pocket in enumerate(pockets)}
    roles |= {p.allocation.program.float_account_id: f"program {i}" for i, p in enumerate(pockets)}

    def same(value):
        if isinstance(value, dict):
            return {
                key: same(item)
                for key, item in value.items()
                # An operation names its authorization by id; its event, in full.
                if key not in _UNIQUE and not (key == "authorization" and isinstance(item, str))
            }
        if isinstance(value, list):
            return [same(item) for item in value]
        return value.replace(tag, "") if isinstance(value, str) else value

    def transfer(row: Transfer):
        fields = ["kind", "amount", "currency", "idempotency_key", "fingerprint", "is_pending"]
        fields += ["metadata", "expires_at", "debit_account_id", "credit_account_id"]
        return {
            **{field: getattr(row, field) for field in fields},
            "entries": [
                (roles.get(entry.account_id, "merchant"), entry.amount)
                for entry in row.entries.order_by("pk")
            ],
            "notice": CaptureNotice.objects.filter(capture=row).exists(),
            "refunds": [transfer(refund) for refund in row.refunds.order_by("pk")],
        }

    def operation(row, params):
        fields = ["amount", "livemode", "idempotency_key"] + (["reason"] if params else [])
        return {
            **{field: same(getattr(row, field)) for field in fields},
            "fingerprint": row.fingerprint
            == fingerprint({"decision": row.decision_id, "amount": row.amount, **params}),
        }

    decisions = []
    for decision in Decision.objects.filter(wallet=wallet).order_by("pk"):
        holds = decision.holds.select_related("hold__resolution").order_by("pk")
        events = WebhookEvent.objects.filter(data__authorization__id=decision.reference)
        decisions.append(
            {
                "holds": [
                    (
                        roles[link.hold.debit_account_id],
                        link.hold.amount,
                        transfer(link.hold.resolution),
                    )
                    for link in holds
                ],
                "captures": [
                    operation(row, {}) for row in Capture.objects.filter(decision=decision)
                ],
                "refunds": [
                    operation(row, {"reason": row.reason})
                    for row in Refund.objects.filter(decision=decision).order_by("pk")
                ],
                "events": [
                    (event.type, same(event.data), list(event.deliveries.values_list("status")))
                    for event in events.order_by("pk")
                ],
            }
        )
    accounts = [(p.account.balance, p.account.pending) for p in pockets]
    accounts += [(p.allocation.program.float_account.balance,) for p in pockets]
    stored = IdempotentResponse.objects.filter(key__startswith=tag).order_by("pk")
    return {
        "decisions": decisions,
        "accounts": accounts,
        "answers": [same(answer) for answer in answers],
        "stored": [(row.status_code, same(json.loads(bytes(row.body)))) for row in stored],
        "deliveries queued": len(queued["deliveries"]),
    }


def _run(api, wallet, tag, monkeypatch):
    queued = {"deliveries": []}
    monkeypatch.setattr(webhook_tasks.deliver_webhook, "delay", queued["deliveries"].append)
    answers = _operate(api, wallet, tag)
    monkeypatch.undo()
    return _written(wallet, tag, answers, queued)


@postgresql_only
def test_the_one_statement_writes_what_the_orm_writes(api, settings, monkeypatch):
    WebhookEndpoint.objects.create(merchant=api.merchant, url="https://shop.example/hooks")
    funder = FunderFactory()
    fast, orm = _world("[one statement]", funder), _world("[orm]", funder)

    settings.AUTHORIZE_ONE_STATEMENT = True
    written = _run(api, fast, "[one statement]", monkeypatch)
    settings.AUTHORIZE_ONE_STATEMENT = False
    expected = _run(api, orm, "[orm]", monkeypatch)

    for part, rows in written.items():
        assert rows == expected[part], part
    split = written["decisions"][0]
    assert [hold[2]["kind"] for hold in split["holds"]] == ["capture", "capture"]
    assert [len(hold[2]["refunds"]) for hold in split["holds"]] != [0, 0]
    refund_entries = [r["entries"] for hold in split["holds"] for r in hold[2]["refunds"]]
    assert any(entries[1][0].startswith("program") for entries in refund_entries)  # aid ended
    assert written["deliveries queued"] == 3 + 3 + 4  # payments, captures, refunds
    call_command("ledger", "verify")


def _answer_lost(monkeypatch, send):
    """`send()` with the process dying before the answer is kept; kept again afterwards."""
    real = idempotency.remember

    def fail(**kwargs):
        raise RuntimeError("the process dies before the answer is kept")

    monkeypatch.setattr(idempotency, "remember", fail)
    with pytest.raises(RuntimeError):
        send()
    monkeypatch.setattr(idempotency, "remember", real)


def _still_held(reference):
    """Nothing released the authorization's hold: no capture, void or reversal posted on it."""
    decision = Decision.objects.get(reference=reference)
    return not Transfer.objects.filter(pending_transfer=decision.holds.get().hold).exists()


def test_the_stored_answer_commits_with_the_capture_and_the_refund(api, authorize, monkeypatch):
    reference = authorize(300)["id"]
    path = f"/authorizations/{reference}"
    _answer_lost(monkeypatch, lambda: api.send(f"{path}/capture", {"amount": 200}, key="capture"))
    # Nothing of the capture survived without its answer: the whole hold still held.
    assert not Capture.objects.exists()
    assert _still_held(reference)

    captured = api.send(f"/authorizations/{reference}/capture", {"amount": 200}, key="capture")
    assert captured.status_code == 201, captured.content

    _answer_lost(monkeypatch, lambda: api.send(f"{path}/refunds", {"amount": 50}, key="refund"))
    assert not Refund.objects.exists()
    assert not Transfer.objects.filter(kind=Transfer.Kind.REFUND).exists()

    first = api.send(f"/authorizations/{reference}/refunds", {"amount": 50}, key="refund")
    again = api.send(f"/authorizations/{reference}/refunds", {"amount": 50}, key="refund")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert Refund.objects.get().amount == 50


def test_the_stored_answer_commits_with_the_reversal(api, authorize, monkeypatch):
    reference = authorize(300)["id"]
    path = f"/authorizations/{reference}/reverse"
    _answer_lost(monkeypatch, lambda: api.send(path, {"amount": 100}, key="reverse"))
    # Nothing of the reversal survived without its answer: the whole hold still held.
    assert not Reversal.objects.exists()
    assert _still_held(reference)

    first = api.send(f"/authorizations/{reference}/reverse", {"amount": 100}, key="reverse")
    again = api.send(f"/authorizations/{reference}/reverse", {"amount": 100}, key="reverse")
    assert first.status_code == again.status_code == 201, first.content
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert Reversal.objects.get().amount == 100


@pytest.mark.parametrize("one_statement", [True, False])
def test_refusals_answer_as_before_on_both_paths(api, authorize, settings, one_statement):
    settings.AUTHORIZE_ONE_STATEMENT = one_statement
    reference = authorize(300)["id"]

    def send(path, body):
        return api.send(f"/authorizations/{reference}/{path}", body, key=str(uuid.uuid4()))

    assert send("refunds", {"amount": 1}).json()["error"]["code"] == "exceeds_refundable_amount"
    assert send("capture", {"amount": 301}).json()["error"]["code"] == "exceeds_hold_amount"
    assert send("capture", {"amount": 300}).status_code == 201
    again = send("capture", {"amount": 1})
    assert again.json()["error"]["code"] in {
        "authorization_already_captured",
        "authorization_not_capturable",
    }
    assert send("refunds", {"amount": 301}).json()["error"]["code"] == "exceeds_refundable_amount"
    assert send("refunds", {"amount": 300}).status_code == 201
    assert send("refunds", {"amount": 1}).json()["error"]["code"] == "exceeds_refundable_amount"
    assert Capture.objects.count() == Refund.objects.count() == 1
    call_command("ledger", "verify")
