"""The authorization's hot path through HTTP: what it costs PostgreSQL, what commits together,
and what the caches may never hide (a revoked key, a suspended merchant)."""

import uuid
from datetime import datetime

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection
from django.test.utils import CaptureQueriesContext
from kombu.exceptions import OperationalError
from psycopg.pq import TransactionStatus

from core.one_statement import OneStatement
from ledger.models import Account, Transfer
from merchant_api import idempotency
from merchants import tasks as webhook_tasks
from merchants.models import IdempotentResponse
from merchants.models.webhooks import WebhookDelivery, WebhookEndpoint, WebhookEvent
from merchants.services import api_key_revoke, merchant_suspend
from notifications import tasks
from tests.concurrency import swept_after
from tests.connections import messages_sent
from tests.factories import (
    BeneficiaryFactory,
    FunderFactory,
    make_allocation,
    make_payment_code,
    make_program,
)
from tests.merchant_api.conftest import FOOD_IN_ISERE
from wallet import hot_path
from wallet.models import Decision, DecisionNotice, Notification
from wallet.models.payment_codes import PaymentCode, PaymentCodeFailure
from wallet.services import wallet_freeze

pytestmark = pytest.mark.django_db(transaction=True)

# What one new authorization may send PostgreSQL, counted as Django's connection sees it: every
# statement, plus BEGIN and COMMIT, which Django logs as statements too. The 6: the
# stored answer's lookup, BEGIN, the wallet's lock through the code, one read under it, one
# write (core/one_statement.py), COMMIT. BEGIN, the lock and the read travel in one message
# (logged as one entry), the COMMIT with the write: 3 round trips (the test after this one
# reads them off the wire); Django still logs its BEGIN and COMMIT. SQLite runs the portable
# path (more statements, but no network between them), the upsert of the pocket's spending per
# period one of them since issue 19's part 7 (21 before).
ROUND_TRIPS = 6 if connection.vendor == "postgresql" else 22


def pay(api, code, amount=100, key=None):
    body = {"amount": amount, "currency": "EUR", "payment_code": code}
    return api.send("/authorizations", body, key=key or str(uuid.uuid4()))


def test_a_new_authorization_costs_at_most_its_round_trips(api, payment_code):
    assert pay(api, payment_code()).status_code == 201  # the key is cached from here on
    code = payment_code()

    with CaptureQueriesContext(connection) as sent:
        response = pay(api, code)

    assert response.status_code == 201, response.content
    statements = [query["sql"] for query in sent.captured_queries]
    assert len(statements) <= ROUND_TRIPS, "\n".join(statements)
    assert not any("merchants_apikey" in sql for sql in statements)  # the cached key


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one statement is PostgreSQL's")
def test_a_new_authorization_waits_for_postgresql_three_times(api, payment_code):
    """What goes over the wire (libpq's trace): the stored answer's lookup; BEGIN, the wallet's
    lock and the read under it in one message; the write and its COMMIT in one message."""
    assert pay(api, payment_code()).status_code == 201
    code = payment_code()

    with messages_sent() as sent:
        response = pay(api, code)

    assert response.status_code == 201, response.content
    assert len(sent) == 3, "\n".join(sent)
    lookup, read, write = sent
    assert "merchants_idempotentresponse" in lookup or lookup.startswith("EXECUTE aidwallet_")
    assert read.startswith("BEGIN; EXECUTE aidwallet_") and read.count("EXECUTE") == 2, read
    assert write.startswith("EXECUTE aidwallet_") and write.endswith("; COMMIT"), write


@pytest.mark.parametrize("amount", [100, 1_000_000])  # approved, declined
def test_the_answer_computed_without_reading_back_is_what_the_api_reads(api, payment_code, amount):
    created = pay(api, payment_code(), amount=amount)
    body = created.json()

    assert created.status_code == 201
    assert api.read(f"/authorizations/{body['id']}").json() == body


def test_the_stored_answer_commits_in_the_payments_transaction(api, payment_code, monkeypatch):
    code = payment_code()

    def fail(**kwargs):
        raise RuntimeError("the process dies before the answer is kept")

    monkeypatch.setattr(idempotency, "remember", fail)
    with pytest.raises(RuntimeError):
        pay(api, code, key="crash")

    # Nothing of the payment survived without its answer: no decision, the code still usable.
    assert not Decision.objects.exists()
    assert PaymentCode.objects.get().status == PaymentCode.Status.ACTIVE
    monkeypatch.undo()
    first = pay(api, code, key="crash")
    again = pay(api, code, key="crash")
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert IdempotentResponse.objects.count() == 1


def test_a_revoked_key_is_refused_at_once_despite_the_cache(api, payment_code):
    assert pay(api, payment_code()).status_code == 201
    api_key_revoke(key=api.merchant.api_keys.get())

    assert pay(api, payment_code()).status_code == 401


def test_a_suspended_merchant_is_refused_at_once_despite_the_cache(api, payment_code):
    assert pay(api, payment_code()).status_code == 201
    merchant_suspend(merchant=api.merchant)

    assert pay(api, payment_code()).status_code == 403


def test_the_payments_message_needs_no_broker_and_the_drain_tells_it(
    api, payment_code, monkeypatch, django_capture_on_commit_callbacks
):
    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr("celery.app.task.Task.apply_async", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        response = pay(api, payment_code())
    assert response.status_code == 201  # the payment asks nothing of the broker
    decision = Decision.objects.get()
    assert DecisionNotice.objects.filter(decision=decision).exists()
    payment_messages = Notification.objects.filter(kind=Notification.Kind.PAYMENT_APPROVED)
    assert not payment_messages.exists()

    # Beat's drain, a second later, on a worker that reaches the broker again.
    monkeypatch.undo()
    assert tasks.drain_notices() == 1
    told = payment_messages.get()
    assert told.recipient == decision.wallet.beneficiary.email
    assert not DecisionNotice.objects.exists()
    assert tasks.drain_notices() == 0  # run again: nothing left, nothing more written
    assert payment_messages.count() == 1


# --- the one-statement path (PostgreSQL) against the portable one -------------------------------

CAPPED = {"categories": {"allow_groups": ["food"]}, "limits": {"day": 3_000}}
# Approved from the capped aid, split over both, declined (above everything), a basket paid
# in part (no tobacco), and approved in part for what is left.
PAYMENTS = [
    {"amount": 1_500},
    {"amount": 4_000},
    {"amount": 50_000},
    {"amount": 700, "metadata": {"till": "2"}, "merchant_reference": "order-7"},
    {
        "amount": 900,
        "partial_approval_allowed": True,
        "lines": [{"amount": 600, "category": "food"}, {"amount": 300, "category": "tobacco"}],
    },
    {"amount": 9_000, "partial_approval_allowed": True},
]
# What differs between two worlds by construction: ids, references, instants.
_UNIQUE = {"at", "created_at", "created", "id", "reference"}


def _world(tag, funder):
    beneficiary = BeneficiaryFactory()
    capped = make_program(funder=funder, rules=CAPPED, name=f"Plafonnée {tag}")
    plain = make_program(funder=funder, rules=FOOD_IN_ISERE, name=f"Simple {tag}")
    make_allocation(program=capped, beneficiary=beneficiary, amount=5_000)
    make_allocation(program=plain, beneficiary=beneficiary, amount=6_000)
    return beneficiary.wallet


def _written(wallet, tag, answers):
    """What the payments of `wallet` wrote, ids, instants and the world's tag taken out."""
    pockets = list(wallet.pockets.order_by("pk").values_list("pk", flat=True))

    def same(value):
        if isinstance(value, dict):
            return {
                key: pockets.index(item) if key == "pocket_id" else same(item)
                for key, item in value.items()
                if key not in _UNIQUE
            }
        if isinstance(value, list):
            return [same(item) for item in value]
        return value.replace(tag, "") if isinstance(value, str) else value

    decisions = []
    for decision in Decision.objects.filter(wallet=wallet).order_by("pk"):
        event = WebhookEvent.objects.get(data__id=decision.reference)
        asked_at = datetime.fromisoformat(decision.request["at"])
        fields = ["status", "amount", "approved_amount", "currency", "reason", "reason_pocket"]
        fields += ["details", "merchant_reference", "metadata", "request", "trace", "channel"]
        decisions.append(
            {
                "decision": same({field: getattr(decision, field) for field in fields}),
                "fingerprint": bool(decision.fingerprint),
                "holds": [
                    (
                        pockets.index(link.pocket_id),
                        link.amount == link.hold.amount,
                        link.hold.kind,
                        link.hold.is_pending,
                        link.hold.currency,
                        link.hold.debit_account_id == link.pocket.account_id,
                        link.hold.credit_account_id == decision.merchant.payable_account_id,
                        link.hold.idempotency_key,
                        link.hold.fingerprint,
                        link.hold.metadata,
                        link.hold.expires_at - asked_at,
                    )
                    for link in decision.holds.select_related("hold", "pocket").order_by("pk")
                ],
                "event": (event.type, same(event.data), event.livemode),
                "deliveries": list(event.deliveries.values_list("status", "attempts")),
                "notice": DecisionNotice.objects.filter(decision=decision).exists(),
            }
        )
    accounts = wallet.pockets.order_by("pk").values_list("account__balance", "account__pending")
    codes = PaymentCode.objects.filter(wallet=wallet).order_by("pk")
    return {
        "decisions": decisions,
        "accounts": list(accounts),
        "codes": [(code.status, code.redeemed_with.count(":")) for code in codes],
        "answers": [same(answer) for answer in answers],
    }


def _pay_all(api, wallet, monkeypatch):
    queued: list[int] = []
    monkeypatch.setattr(webhook_tasks.deliver_webhook, "delay", queued.append)
    answers = []
    for payment in PAYMENTS:
        code = make_payment_code(wallet)
        response = api.send("/authorizations", {"currency": "EUR", "payment_code": code, **payment})
        assert response.status_code == 201, response.content
        answers.append(response.json())
    monkeypatch.undo()
    return answers, queued


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one statement is PostgreSQL's")
def test_the_one_statement_writes_what_the_portable_path_writes(api, settings, monkeypatch):
    WebhookEndpoint.objects.create(merchant=api.merchant, url="https://shop.example/hooks")
    funder = FunderFactory()
    fast, portable = _world("[one statement]", funder), _world("[portable]", funder)

    settings.AUTHORIZE_ONE_STATEMENT = True
    fast_answers, fast_queued = _pay_all(api, fast, monkeypatch)
    settings.AUTHORIZE_ONE_STATEMENT = False
    portable_answers, portable_queued = _pay_all(api, portable, monkeypatch)

    written = _written(fast, "[one statement]", fast_answers)
    expected = _written(portable, "[portable]", portable_answers)
    for part, rows in written.items():
        for row, expected_row in zip(rows, expected[part], strict=True):
            assert row == expected_row, part
    statuses = [decision["decision"]["status"] for decision in written["decisions"]]
    assert set(statuses) == {"approved", "partially_approved", "declined"}
    assert len(written["decisions"][1]["holds"]) == 2  # split over both aids
    assert len(fast_queued) == len(portable_queued) == len(PAYMENTS)  # one delivery each
    assert WebhookDelivery.objects.filter(pk__in=fast_queued).count() == len(PAYMENTS)
    call_command("ledger", "verify")


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one statement is PostgreSQL's")
def test_a_frozen_wallet_is_declined_the_same_both_ways(api, settings):
    funder = FunderFactory()
    answers = {}
    for tag, one_statement in (("[one statement]", True), ("[portable]", False)):
        wallet = _world(tag, funder)
        code = make_payment_code(wallet)  # made before: a frozen wallet makes no code
        wallet_freeze(wallet=wallet, reason="test")
        settings.AUTHORIZE_ONE_STATEMENT = one_statement
        response = pay(api, code, amount=500)
        assert response.status_code == 201, response.content
        answers[tag] = _written(wallet, tag, [response.json()])
    assert answers["[one statement]"] == answers["[portable]"]
    decision = answers["[portable]"]["decisions"][0]["decision"]
    assert decision["reason"] == "wallet_frozen"
    assert decision["trace"]["pockets"] == []


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one statement is PostgreSQL's")
def test_a_merchant_without_endpoint_gets_the_event_alone(api, payment_code, monkeypatch):
    queued: list[int] = []
    monkeypatch.setattr(webhook_tasks.deliver_webhook, "delay", queued.append)
    assert pay(api, payment_code()).status_code == 201

    event = WebhookEvent.objects.get()  # what the events list (the audit) shows
    assert event.type == "authorization.approved"
    assert not WebhookDelivery.objects.exists()
    assert queued == []


def test_refusals_leave_the_fast_path_and_answer_as_before(api, payment_code, beneficiary):
    code = payment_code()
    assert pay(api, code).status_code == 201
    used = pay(api, code)
    assert used.status_code == 409, used.content
    assert used.json()["error"]["code"] == "payment_code_used"
    live = payment_code()
    wrong = live[:4] + ("000000" if live[4:] != "000000" else "111111")
    refused = pay(api, wrong)
    assert refused.json()["error"]["code"] == "payment_code_invalid"
    assert PaymentCodeFailure.objects.filter(wallet=beneficiary.wallet).count() == 1
    limited = pay(api, payment_code(max_amount=50))
    assert limited.json()["error"]["code"] == "payment_code_amount_exceeded"
    assert Decision.objects.count() == 1


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one statement is PostgreSQL's")
def test_a_hold_the_balance_no_longer_covers_is_decided_again(
    api, payment_code, food_pocket, monkeypatch
):
    """A sweep that takes the money between the read and the write (it locks the pocket's
    account, not the wallet) makes the account's CHECK abort the one statement; the payment is
    decided again on the fresh balance, in a new transaction."""
    read_then_swept, swept = swept_after(hot_path.lock_and_read_by_slot, food_pocket.account_id)
    monkeypatch.setattr(hot_path, "lock_and_read_by_slot", read_then_swept)
    response = pay(api, payment_code(), amount=100)

    assert swept == [1]
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "declined"
    assert response.json()["decline"]["code"] == "insufficient_funds"
    assert Decision.objects.count() == 1


# --- the write sent with its COMMIT (PostgreSQL's pipeline mode) --------------------------------


def _spied_runs(monkeypatch, before=None):
    """OneStatement.run wrapped: each run's outcome (the transaction's state right after it, or
    the error it raised) is appended to the list returned; `before(writes)` runs first."""
    runs: list = []
    run = OneStatement.run

    def spied(self, **kwargs):
        if before is not None:
            before(self)
        try:
            run(self, **kwargs)
        except IntegrityError as error:
            runs.append(type(error))
            raise
        runs.append(connection.connection.info.transaction_status)

    monkeypatch.setattr(OneStatement, "run", spied)
    return runs


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one statement is PostgreSQL's")
def test_the_one_statement_commits_the_payment_as_it_writes_it(api, payment_code, monkeypatch):
    runs = _spied_runs(monkeypatch)

    response = pay(api, payment_code())

    assert response.status_code == 201, response.content
    # Committed by the write's own round trip, not by the atomic block's exit after it.
    assert runs == [TransactionStatus.IDLE]
    assert Decision.objects.get().status == Decision.Status.APPROVED


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one statement is PostgreSQL's")
def test_a_commit_sent_with_the_write_that_fails_moves_no_money_and_is_tried_again(
    api, payment_code, food_pocket, monkeypatch
):
    """A foreign key checked at the COMMIT (deferred) that fails: the error comes back with the
    write's round trip, nothing of that try is kept, and the payment is tried again whole."""
    wallet_id = food_pocket.wallet_id

    def break_a_reference_once(writes):
        if not runs:  # a pocket moved to a wallet that does not exist: refused at the COMMIT
            writes.sql(
                "UPDATE wallet_pocket SET wallet_id = %s WHERE id = %s", [-1, food_pocket.pk]
            )

    runs = _spied_runs(monkeypatch, before=break_a_reference_once)
    code = payment_code()
    response = pay(api, code, amount=300, key="once")

    assert runs == [IntegrityError, TransactionStatus.IDLE]
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "approved"
    food_pocket.refresh_from_db()
    assert food_pocket.wallet_id == wallet_id
    account = Account.objects.get(pk=food_pocket.account_id)
    assert (account.balance, account.pending) == (10_000, 300)  # held once, not twice
    assert Transfer.objects.filter(kind=Transfer.Kind.HOLD).count() == 1
    assert Decision.objects.count() == IdempotentResponse.objects.count() == 1
    assert PaymentCode.objects.get().status == PaymentCode.Status.USED
    again = pay(api, code, amount=300, key="once")
    assert again.content == response.content
    assert again["Idempotent-Replayed"] == "true"
