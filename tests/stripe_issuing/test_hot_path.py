"""Stripe's real-time authorization on PostgreSQL's fast path (wallet.authorize.authorize_card):
what it costs the database, that it writes what the portable path writes, and that it decides
on the card and balances as they are under the wallet's lock."""

import dataclasses

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ledger.verify import verify
from merchants.acceptors import card_acceptor_add
from stripe_issuing import authorizations
from tests.concurrency import swept_after
from tests.factories import BeneficiaryFactory, make_allocation, make_merchant, make_program
from tests.stripe_issuing import stripe_events as se
from tests.stripe_issuing.hooks import (
    FOOD_IN_ISERE,
    balances,
    beneficiary,
    card,
    food_pocket,
    webhook_secret,
)
from wallet import hot_path
from wallet.models import Card, Decision, DecisionNotice

__all__ = ["beneficiary", "card", "food_pocket", "webhook_secret"]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("webhook_secret"),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the fast path is PostgreSQL's"),
]

# The decision's own round trips, inside the webhook's transaction: the wallet's lock and one
# read under it in one message, and one write between a savepoint and its release. The portable
# path sent 13 statements.
DECISION_STATEMENTS = 4


def ask(client, card, amount, **fields):
    auth = se.authorization(card=card.stripe_card_id, amount=amount, **fields)
    return auth, se.post(client, se.event("issuing_authorization.request", auth))


def test_a_new_card_payment_costs_the_decision_four_round_trips(client, card, food_pocket):
    # One of our merchants (an unknown shop's payment is also counted for the operator).
    card_acceptor_add(merchant=make_merchant(), network_id=se.GROCERY["network_id"], how="admin")
    ask(client, card, 100)  # a first payment: what is cached or prepared once is
    lock = f"FROM wallet_wallet WHERE id = {card.wallet_id} FOR UPDATE"
    with CaptureQueriesContext(connection) as sent:
        _, response = ask(client, card, 2_500)

    assert response.json()["approved"] is True
    statements = [query["sql"] for query in sent.captured_queries]
    first = next(i for i, sql in enumerate(statements) if lock in sql)
    decision = statements[first : first + DECISION_STATEMENTS]
    assert "FROM wallet_card cd" in decision[0], decision[0]  # the read, after the lock
    assert decision[1].startswith("SAVEPOINT"), "\n".join(statements)
    assert decision[2].startswith("WITH w0 AS ("), decision[2]  # core/one_statement.py
    assert decision[3].startswith("RELEASE SAVEPOINT"), "\n".join(statements)
    assert balances(food_pocket) == (10_000, 2_600)


def _world(number: int, program):
    """A beneficiary with the food aid `program` and a card of their own."""
    beneficiary = BeneficiaryFactory()
    pocket = make_allocation(program=program, beneficiary=beneficiary, amount=10_000).pocket
    card = Card.objects.create(
        wallet=beneficiary.wallet,
        kind="virtual",
        status="active",
        last4="4242",
        stripe_card_id=f"ic_1HotPath{number:07d}",
    )
    return card, pocket


def _without_ids(value):
    """A decision's trace without what differs between two worlds: pocket ids, creation times."""
    if isinstance(value, dict):
        return {
            k: _without_ids(v) for k, v in value.items() if k not in {"pocket_id", "created_at"}
        }
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


def _written(card, pocket, answers) -> dict:
    decisions = [
        {
            "status": d.status,
            "approved_amount": d.approved_amount,
            "reason": d.reason,
            "reason_pocket": d.reason_pocket,
            "details": d.details,
            "trace": _without_ids(d.trace),
            "metadata": d.metadata,
            "request": {**d.request, "at": None},
            "holds": list(d.holds.values_list("amount", "hold__amount", "hold__credit_account")),
            "notice": DecisionNotice.objects.filter(decision=d).exists(),
        }
        for d in Decision.objects.filter(card=card).order_by("pk")
    ]
    return {"decisions": decisions, "balances": balances(pocket), "answers": answers}


PAYMENTS = [
    {"amount": 2_500},  # approved
    {"amount": 15_000, "controllable": True},  # approved in part (the per-payment limit)
    {"amount": 1_000, "merchant": se.BAR},  # declined: category
    {"amount": 7_000},  # declined: the rest of the money is short
]


def test_the_fast_path_writes_what_the_portable_path_writes(client, settings):
    written = {}
    program = make_program(rules=FOOD_IN_ISERE)
    for number, one_statement in enumerate((True, False)):
        card, pocket = _world(number, program)
        settings.AUTHORIZE_ONE_STATEMENT = one_statement
        answers = []
        for payment in PAYMENTS:
            _, response = ask(client, card, **payment)
            answers.append({**response.json(), "metadata": None})
        written[one_statement] = _written(card, pocket, answers)

    assert written[True] == written[False]
    assert [d["status"] for d in written[True]["decisions"]] == [
        "approved",
        "partially_approved",
        "declined",
        "declined",
    ]
    assert verify() == []


def test_a_card_frozen_after_it_was_read_is_declined_under_the_lock(
    client, card, food_pocket, monkeypatch
):
    """The webhook reads the card before the wallet's lock; a freeze committed in between is
    seen under the lock."""
    stale = Card.objects.select_related("wallet").get(pk=card.pk)
    Card.objects.filter(pk=card.pk).update(status=Card.Status.FROZEN)
    read = authorizations.card_read
    monkeypatch.setattr(
        authorizations,
        "card_read",
        lambda *args: dataclasses.replace(read(*args), card=stale),
    )

    _, response = ask(client, card, 2_500)

    assert response.json()["approved"] is False
    assert response.json()["metadata"]["reason"] == "card_frozen"
    assert balances(food_pocket) == (10_000, 0)


def test_a_hold_the_balance_no_longer_covers_is_decided_again(
    client, card, food_pocket, monkeypatch
):
    """A sweep that takes the money between the read and the write (it locks the pocket's
    account, not the wallet) makes the account's CHECK abort the write; its savepoint is rolled
    back and authorize() decides again on the fresh balance, in the same transaction."""
    read_then_swept, swept = swept_after(hot_path.lock_and_read_card, food_pocket.account_id)
    monkeypatch.setattr(hot_path, "lock_and_read_card", read_then_swept)
    _, response = ask(client, card, 2_500)

    assert swept == [1]
    assert response.json()["approved"] is False
    assert response.json()["metadata"]["reason"] == "insufficient_funds"
    decision = Decision.objects.get()
    assert decision.holds.count() == 0
    assert DecisionNotice.objects.filter(decision=decision).count() == 1  # the second try's
