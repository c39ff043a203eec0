"""Stripe may deliver one event twice at the same instant (a retry racing a slow first
delivery), or two events carrying the same transaction: on PostgreSQL, with real concurrent
connections, the money moves once."""

import pytest
from django.test import Client

from ledger.verify import verify
from tests.concurrency import run_together
from tests.markers import postgresql_only
from tests.stripe_issuing import stripe_events as se
from tests.stripe_issuing.hooks import balances, beneficiary, card, food_pocket, webhook_secret
from wallet.models.stripe_events import StripeEvent

__all__ = ["beneficiary", "card", "food_pocket", "webhook_secret"]

pytestmark = [
    postgresql_only,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("webhook_secret"),
]


@pytest.fixture
def approved(card, food_pocket):
    """A 6,000 authorization we approved: held on the food pocket."""
    auth = se.authorization(card=card.stripe_card_id, amount=6_000)
    assert se.post(Client(), se.event("issuing_authorization.request", auth)).json()["approved"]
    assert balances(food_pocket) == (10_000, 6_000)
    return auth


def capture_of(card, authorization, amount: int) -> dict:
    return se.transaction(
        card=card.stripe_card_id, type="capture", amount=amount, authorization=authorization["id"]
    )


def test_one_capture_event_delivered_four_times_at_once_moves_money_once(
    card, approved, food_pocket
):
    body = se.event("issuing_transaction.created", capture_of(card, approved, 4_000))

    answers = run_together([lambda: se.post(Client(), body) for _ in range(4)])

    assert [getattr(answer, "status_code", answer) for answer in answers] == [200] * 4
    assert balances(food_pocket) == (6_000, 0)  # 4,000 paid once, the rest of the hold released
    assert StripeEvent.objects.filter(stripe_id=body["id"]).count() == 1
    assert verify() == []


def test_two_events_of_one_capture_at_once_move_money_once(card, approved, food_pocket):
    txn = capture_of(card, approved, 4_000)
    bodies = [se.event("issuing_transaction.created", txn) for _ in range(2)]  # two event ids
    assert bodies[0]["id"] != bodies[1]["id"]

    answers = run_together([lambda body=body: se.post(Client(), body) for body in bodies])

    assert [getattr(answer, "status_code", answer) for answer in answers] == [200, 200]
    assert balances(food_pocket) == (6_000, 0)
    assert verify() == []
