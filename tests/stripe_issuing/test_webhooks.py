"""The Stripe endpoint itself: signatures, the replay window, storage, duplicates, failures and
their replay."""

import time

import pytest
from django.core.management import call_command

from tests.stripe_issuing import stripe_events as se
from tests.stripe_issuing.hooks import balances, beneficiary, card, food_pocket, webhook_secret
from wallet.models import Decision
from wallet.models.stripe_events import StripeEvent

__all__ = ["beneficiary", "card", "food_pocket", "webhook_secret"]

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]


@pytest.fixture
def request_event(card):
    return se.event(
        "issuing_authorization.request", se.authorization(card=card.stripe_card_id, amount=2_500)
    )


def send(client, payload: bytes, header: str | None):
    extra = {} if header is None else {"HTTP_STRIPE_SIGNATURE": header}
    return client.post("/hooks/stripe", data=payload, content_type="application/json", **extra)


def assert_refused(response, food_pocket):
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert StripeEvent.objects.count() == 0
    assert Decision.objects.count() == 0
    assert balances(food_pocket) == (10_000, 0)


def test_a_tampered_payload_is_refused(client, food_pocket, request_event):
    payload, header = se.signed(request_event)
    assert_refused(send(client, payload.replace(b"2500", b"250"), header), food_pocket)


def test_an_unsigned_payload_is_refused(client, food_pocket, request_event):
    payload, _ = se.signed(request_event)
    assert_refused(send(client, payload, None), food_pocket)


def test_a_payload_signed_with_another_secret_is_refused(client, food_pocket, request_event):
    payload, header = se.signed(request_event, secret="whsec_someone_else")
    assert_refused(send(client, payload, header), food_pocket)


def test_a_payload_signed_more_than_five_minutes_ago_is_refused(client, food_pocket, request_event):
    payload, header = se.signed(request_event, at=int(time.time()) - 301)
    assert_refused(send(client, payload, header), food_pocket)


def test_a_payload_signed_ten_minutes_ahead_is_refused(client, food_pocket, request_event):
    payload, header = se.signed(request_event, at=int(time.time()) + 600)
    assert_refused(send(client, payload, header), food_pocket)


def test_a_payload_signed_four_minutes_ago_is_accepted(client, food_pocket, request_event):
    payload, header = se.signed(request_event, at=int(time.time()) - 240)
    assert send(client, payload, header).json()["approved"] is True


def test_a_payload_signed_four_minutes_ahead_is_accepted(client, food_pocket, request_event):
    # A clock a little ahead of ours is within the tolerance, as one a little behind is.
    payload, header = se.signed(request_event, at=int(time.time()) + 240)
    assert send(client, payload, header).json()["approved"] is True


def test_without_a_configured_secret_everything_is_refused(
    client, settings, food_pocket, request_event
):
    settings.STRIPE_WEBHOOK_SECRET = ""
    payload, header = se.signed(request_event)
    assert_refused(send(client, payload, header), food_pocket)


def test_an_event_is_stored_with_its_result(client, card, request_event):
    se.post(client, request_event)
    event = StripeEvent.objects.get()
    assert (event.stripe_id, event.type, event.api_version) == (
        request_event["id"],
        "issuing_authorization.request",
        request_event["api_version"],
    )
    assert event.payload == request_event
    assert event.processed_at is not None
    assert event.outcome == "approved: 2500"


def test_an_event_type_without_handler_is_acknowledged_and_ignored(client):
    response = se.post(client, se.event("issuing_dispute.created", {"id": "idp_1"}))
    assert (response.status_code, response.json()) == (200, {"received": True})
    event = StripeEvent.objects.get()
    assert (event.result, event.outcome) == (
        "processed",
        "ignored: no handler for issuing_dispute.created",
    )


def test_a_failed_event_is_recorded_and_replayed_by_the_command(
    client, card, food_pocket, monkeypatch
):
    capture = se.transaction(
        card=card.stripe_card_id, type="capture", amount=1_000, authorization=None
    )

    def broken(**kwargs):
        raise RuntimeError("ledger unavailable")

    monkeypatch.setattr("stripe_issuing.transactions.transaction_event_apply", broken)
    response = se.post(client, se.event("issuing_transaction.created", capture))
    assert (response.status_code, response.json()) == (200, {"received": True})
    event = StripeEvent.objects.get()
    assert (event.result, event.attempts) == ("failed", 1)
    assert "ledger unavailable" in event.error
    assert balances(food_pocket) == (10_000, 0)

    monkeypatch.undo()
    call_command("stripe", "replay_failed")
    event.refresh_from_db()
    assert (event.result, event.attempts, event.error) == ("processed", 2, "")
    assert balances(food_pocket) == (9_000, 0)

    call_command("stripe", "replay_failed")
    assert balances(food_pocket) == (9_000, 0)
