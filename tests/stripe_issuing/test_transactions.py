"""What Stripe tells after the decision: reversals and expiries release holds, captures post
them (less, more, or with no authorization at all), refunds give back; the money moves once
whatever the number of deliveries and their order."""

import pytest

from ledger.models import Account, Transfer
from ledger.selectors import account_balance
from ledger.verify import verify
from tests.factories import make_allocation, make_program
from tests.stripe_issuing import stripe_events as se
from tests.stripe_issuing.hooks import balances, beneficiary, card, food_pocket, webhook_secret
from wallet.models.stripe_events import StripeEvent

__all__ = ["beneficiary", "card", "food_pocket", "webhook_secret"]

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


@pytest.fixture
def approved(client, card, food_pocket):
    """A 6,000 authorization we approved: held on the food pocket."""
    auth = se.authorization(card=card.stripe_card_id, amount=6_000)
    assert se.post(client, se.event("issuing_authorization.request", auth)).json()["approved"]
    return auth


def capture(client, card, amount, authorization, **fields):
    txn = se.transaction(
        card=card.stripe_card_id, type="capture", amount=amount, authorization=authorization
    )
    return txn, se.post(client, se.event("issuing_transaction.created", txn | fields))


def receivable_owed(program) -> int:
    account = Account.objects.filter(code=f"program-receivable:{program.pk}").first()
    return -account_balance(account) if account else 0


def test_a_reversal_releases_the_hold(client, approved, food_pocket):
    body = se.event("issuing_authorization.updated", se.decided(approved, status="reversed"))
    se.post(client, body)
    assert balances(food_pocket) == (10_000, 0)
    assert verify() == []


def test_an_expiry_releases_the_hold(client, approved, food_pocket):
    se.post(
        client, se.event("issuing_authorization.updated", se.decided(approved, status="expired"))
    )
    assert balances(food_pocket) == (10_000, 0)


def test_a_partial_reversal_keeps_the_rest_held(client, approved, food_pocket):
    se.post(client, se.event("issuing_authorization.updated", se.decided(approved, held=4_000)))
    assert balances(food_pocket) == (10_000, 4_000)
    assert verify() == []


def test_the_created_event_of_an_approval_moves_nothing(client, approved, food_pocket):
    se.post(client, se.event("issuing_authorization.created", se.decided(approved)))
    assert balances(food_pocket) == (10_000, 6_000)


def test_a_stale_event_does_not_release_an_increment_decided_since(
    client, card, approved, food_pocket
):
    increment = se.authorization(
        card=card.stripe_card_id, amount=2_000, id=approved["id"], held=6_000, history=1
    )
    assert se.post(client, se.event("issuing_authorization.request", increment)).json()["approved"]
    # The `created` event of the first request, delivered after the increment was decided.
    se.post(client, se.event("issuing_authorization.created", se.decided(approved)))
    assert balances(food_pocket) == (10_000, 8_000)


def test_a_capture_of_the_whole_amount_posts_the_hold(client, card, approved, food_pocket):
    capture(client, card, 6_000, approved["id"])
    assert balances(food_pocket) == (4_000, 0)
    assert verify() == []


def test_a_capture_under_the_authorized_amount_releases_the_rest(
    client, card, approved, food_pocket
):
    capture(client, card, 4_500, approved["id"])
    assert balances(food_pocket) == (5_500, 0)
    assert verify() == []


def test_a_capture_over_the_authorized_amount_takes_the_extra_from_the_pocket(
    client, card, approved, food_pocket
):
    capture(client, card, 7_000, approved["id"])
    assert balances(food_pocket) == (3_000, 0)
    assert receivable_owed(food_pocket.allocation.program) == 0
    assert verify() == []


def test_what_the_pocket_cannot_cover_goes_to_the_programs_receivable(
    client, card, approved, food_pocket
):
    _, response = capture(client, card, 12_500, approved["id"])
    assert response.status_code == 200
    assert balances(food_pocket) == (0, 0)
    assert receivable_owed(food_pocket.allocation.program) == 2_500
    flagged = Transfer.objects.get(idempotency_key__endswith=":receivable")
    assert flagged.metadata["to_review"] is True
    assert verify() == []


def test_a_force_capture_is_paid_by_a_pocket_that_accepts_the_merchant(
    client, card, beneficiary, food_pocket
):
    transport = make_allocation(
        program=make_program(rules={"categories": {"allow_groups": ["transport"]}}),
        beneficiary=beneficiary,
        amount=10_000,
    ).pocket
    capture(client, card, 3_000, None)
    assert balances(food_pocket) == (7_000, 0)
    assert balances(transport) == (10_000, 0)
    assert verify() == []


def test_a_force_capture_no_pocket_accepts_goes_to_the_receivable(client, card, food_pocket):
    txn = se.transaction(
        card=card.stripe_card_id,
        type="capture",
        amount=3_000,
        authorization="iauth_1NeverSeen",
        merchant=se.BAR,
    )
    se.post(client, se.event("issuing_transaction.created", txn))
    assert balances(food_pocket) == (10_000, 0)
    assert receivable_owed(food_pocket.allocation.program) == 3_000
    assert verify() == []


def test_a_refund_goes_back_to_the_pocket(client, card, approved, food_pocket):
    capture(client, card, 6_000, approved["id"])
    refund = se.transaction(
        card=card.stripe_card_id, type="refund", amount=2_000, authorization=approved["id"]
    )
    se.post(client, se.event("issuing_transaction.created", refund))
    assert balances(food_pocket) == (6_000, 0)
    assert verify() == []


def test_a_refund_without_authorization_goes_back_to_the_last_card_payment(
    client, card, approved, food_pocket
):
    capture(client, card, 6_000, approved["id"])
    refund = se.transaction(
        card=card.stripe_card_id, type="refund", amount=6_000, authorization=None
    )
    se.post(client, se.event("issuing_transaction.created", refund))
    assert balances(food_pocket) == (10_000, 0)


def test_a_refund_beyond_what_pockets_paid_pays_back_the_receivable(
    client, card, approved, food_pocket
):
    capture(client, card, 12_500, approved["id"])
    refund = se.transaction(
        card=card.stripe_card_id, type="refund", amount=12_500, authorization=approved["id"]
    )
    se.post(client, se.event("issuing_transaction.created", refund))
    assert balances(food_pocket) == (10_000, 0)
    assert receivable_owed(food_pocket.allocation.program) == 0
    assert verify() == []


def test_each_event_delivered_three_times_moves_money_once(client, card, approved, food_pocket):
    txn = se.transaction(
        card=card.stripe_card_id, type="capture", amount=4_000, authorization=approved["id"]
    )
    events = [
        se.event("issuing_authorization.created", se.decided(approved)),
        se.event("issuing_transaction.created", txn),
    ]
    for body in events * 3:
        assert se.post(client, body).status_code == 200
    assert balances(food_pocket) == (6_000, 0)
    assert StripeEvent.objects.count() == 3  # with the request
    assert verify() == []


def test_the_same_transaction_in_two_events_moves_money_once(client, card, approved, food_pocket):
    txn, _ = capture(client, card, 4_000, approved["id"])
    se.post(client, se.event("issuing_transaction.created", txn))  # another event id
    assert balances(food_pocket) == (6_000, 0)
    assert StripeEvent.objects.order_by("pk").last().outcome == "ignored: already done"


def test_events_out_of_order_end_in_the_same_state(client, card, approved, food_pocket):
    # given the capture and a late `closed` update arriving before the `created` one
    capture(client, card, 4_000, approved["id"])
    se.post(
        client, se.event("issuing_authorization.updated", se.decided(approved, status="closed"))
    )
    se.post(client, se.event("issuing_authorization.created", se.decided(approved)))
    # then the capture's hold stays captured and nothing is released twice
    assert balances(food_pocket) == (6_000, 0)
    assert verify() == []


def test_a_capture_before_its_reversal_event_is_not_undone(client, card, approved, food_pocket):
    capture(client, card, 6_000, approved["id"])
    se.post(
        client, se.event("issuing_authorization.updated", se.decided(approved, status="reversed"))
    )
    assert balances(food_pocket) == (4_000, 0)
    assert verify() == []
