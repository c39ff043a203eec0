import pytest
import stripe

from beneficiary_app.services import card_freeze, card_report_lost, card_unfreeze
from stripe_issuing.cards import (
    CardsNotAvailable,
    blocked_categories,
    card_cancel,
    card_event_apply,
    card_issue,
    card_provision,
)
from stripe_issuing.client import cards_enabled
from stripe_issuing.tasks import issue_card
from tests.factories import BeneficiaryFactory
from wallet.models import Card

pytestmark = pytest.mark.django_db

CARDS = r"/v1/issuing/cards"
ONE_CARD = r"/v1/issuing/cards/ic_\w+"


@pytest.fixture
def wallet(db):
    return BeneficiaryFactory(first_name="Marie", last_name="Dupont", postcode="38000").wallet


@pytest.fixture
def issue(stripe_fake, eager_tasks, django_capture_on_commit_callbacks):
    def issue(wallet, kind="virtual"):
        with django_capture_on_commit_callbacks(execute=True):
            card = card_issue(wallet=wallet, kind=kind)
        card.refresh_from_db()
        return card

    return issue


@pytest.fixture
def issued(issue, wallet):
    return issue(wallet)


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def test_issuing_creates_one_cardholder_and_one_card_with_the_controls(stripe_fake, issued):
    # then: one cardholder, sent with an address and keyed by the beneficiary
    [holder] = stripe_fake.sent("POST", r"/v1/issuing/cardholders")
    assert holder.form["type"] == "individual"
    assert holder.form["name"] == "Marie Dupont"
    assert holder.form["billing"]["address"]["postal_code"] == "38000"
    assert holder.form["billing"]["address"]["country"] == "FR"
    beneficiary_pk = issued.wallet.beneficiary.pk
    assert holder.headers["Idempotency-Key"] == f"cardholder:{beneficiary_pk}"
    # and one card, with Stripe's spending controls as a first line
    [sent] = stripe_fake.sent("POST", CARDS)
    assert sent.headers["Idempotency-Key"] == f"card:{issued.reference}"
    assert sent.form["currency"] == "eur"
    assert sent.form["type"] == "virtual"
    assert sent.form["status"] == "active"
    controls = sent.form["spending_controls"]
    assert "automated_cash_disburse" in controls["blocked_categories"]
    assert "manual_cash_disburse" in controls["blocked_categories"]
    assert controls["spending_limits"] == [{"amount": "50000", "interval": "per_authorization"}]
    # and our record points at Stripe's card
    [stripe_card] = stripe_fake.cards.values()
    assert issued.stripe_card_id == stripe_card["id"]
    assert issued.stripe_cardholder_id == stripe_card["cardholder"]["id"]
    assert issued.last4 == stripe_card["last4"]
    assert issued.status == Card.Status.ACTIVE


def test_the_per_authorization_cap_comes_from_settings(stripe_fake, settings, issue, wallet):
    settings.STRIPE_CARD_PER_AUTHORIZATION_CAP = 12_000

    issue(wallet)

    [sent] = stripe_fake.sent("POST", CARDS)
    assert sent.form["spending_controls"]["spending_limits"][0]["amount"] == "12000"


def test_every_blocked_category_is_a_stripe_category():
    names = blocked_categories()

    assert names == sorted(set(names))
    assert "betting_casino_gambling" in names
    assert "" not in names


def test_a_physical_card_waits_for_activation_and_is_shipped(stripe_fake, issue, wallet):
    card = issue(wallet, kind="physical")

    [sent] = stripe_fake.sent("POST", CARDS)
    assert sent.form["type"] == "physical"
    assert sent.form["status"] == "inactive"
    assert sent.form["shipping"]["address"]["postal_code"] == "38000"
    assert card.status == Card.Status.INACTIVE


def test_a_second_card_reuses_the_cardholder(stripe_fake, issue, wallet):
    first = issue(wallet)
    second = issue(wallet, kind="physical")

    assert len(stripe_fake.sent("POST", r"/v1/issuing/cardholders")) == 1
    assert second.stripe_cardholder_id == first.stripe_cardholder_id
    assert len(stripe_fake.cards) == 2


def test_running_the_task_twice_creates_one_card(stripe_fake, issued):
    issue_card.apply(args=[issued.pk])

    assert len(stripe_fake.cards) == 1
    assert len(stripe_fake.sent("POST", CARDS)) == 1


def test_a_retry_after_a_lost_answer_gets_the_first_card_back(stripe_fake, wallet):
    # given: Stripe makes the card but the answer is lost, more times than the library retries
    card = Card.objects.create(wallet=wallet, kind="virtual")
    stripe_fake.drop_responses("POST", CARDS, times=3)

    # when: the task retries on the network error
    issue_card.apply(args=[card.pk])

    # then: four requests with one key, one card at Stripe, and ours linked to it
    sent = stripe_fake.sent("POST", CARDS)
    assert len(sent) == 4
    assert {request.headers["Idempotency-Key"] for request in sent} == {f"card:{card.reference}"}
    [stripe_card] = stripe_fake.cards.values()
    card.refresh_from_db()
    assert card.stripe_card_id == stripe_card["id"]


def test_a_network_failure_is_raised_for_the_task_to_retry(stripe_fake, wallet):
    card = Card.objects.create(wallet=wallet, kind="virtual")
    stripe_fake.drop_responses("POST", CARDS, times=3)

    with pytest.raises(stripe.APIConnectionError):
        card_provision(card=card)

    card_provision(card=card)
    assert len(stripe_fake.cards) == 1


def test_without_a_key_cards_are_off_and_nothing_is_sent(stripe_fake, settings, wallet):
    settings.STRIPE_SECRET_KEY = ""

    assert cards_enabled() is False
    with pytest.raises(CardsNotAvailable) as error:
        card_issue(wallet=wallet, kind="virtual")

    assert error.value.code == "cards_not_available"
    assert not Card.objects.exists()
    assert stripe_fake.requests == []


def test_freezing_without_a_key_changes_ours_and_sends_nothing(
    stripe_fake, settings, issued, commit
):
    settings.STRIPE_SECRET_KEY = ""

    with commit():
        card_freeze(card=issued)

    assert stripe_fake.sent("POST", ONE_CARD) == []


@pytest.mark.parametrize(
    ("actions", "stripe_status", "reason"),
    [
        ([card_freeze], "inactive", None),
        ([card_freeze, card_unfreeze], "active", None),
        ([card_report_lost], "canceled", "lost"),
        ([card_cancel], "canceled", None),
    ],
)
def test_our_changes_are_pushed_to_stripe(
    stripe_fake, issued, commit, actions, stripe_status, reason
):
    for action in actions:
        with commit():
            action(card=issued)

    pushed = stripe_fake.sent("POST", ONE_CARD)
    assert pushed[-1].form["status"] == stripe_status
    assert pushed[-1].form.get("cancellation_reason") == reason
    assert stripe_fake.cards[issued.stripe_card_id]["status"] == stripe_status


def test_a_card_not_yet_at_stripe_is_changed_here_only(stripe_fake, wallet, commit):
    card = Card.objects.create(wallet=wallet, kind="virtual", status=Card.Status.ACTIVE)

    with commit():
        card_freeze(card=card)

    assert stripe_fake.requests == []


def test_a_card_lost_while_stripe_made_it_is_cancelled_at_stripe(
    stripe_fake, eager_tasks, wallet, commit
):
    card = Card.objects.create(wallet=wallet, kind="virtual")
    card_report_lost(card=card)

    with commit():
        card_provision(card=card)

    card.refresh_from_db()
    assert card.status == Card.Status.LOST
    assert stripe_fake.cards[card.stripe_card_id]["status"] == "canceled"


def _event(card_id, *, status, type_="issuing_card.updated", reason=None, last4="4242", **extra):
    return {
        "id": "evt_1",
        "object": "event",
        "type": type_,
        "data": {
            "object": {
                "id": card_id,
                "object": "issuing.card",
                "status": status,
                "cancellation_reason": reason,
                "last4": last4,
                "cardholder": {"id": "ich_1", "object": "issuing.cardholder"},
                "metadata": {},
                **extra,
            }
        },
    }


def test_activation_of_a_physical_card_at_stripe_activates_ours(issue, wallet):
    card = issue(wallet, kind="physical")

    result = card_event_apply(event=_event(card.stripe_card_id, status="active", last4="1881"))

    card.refresh_from_db()
    assert (card.status, card.last4) == (Card.Status.ACTIVE, "1881")
    assert "active" in result


@pytest.mark.parametrize(
    ("reason", "ours"), [("lost", Card.Status.LOST), ("design_rejected", Card.Status.CANCELED)]
)
def test_a_cancellation_at_stripe_closes_ours(issued, reason, ours):
    card_event_apply(event=_event(issued.stripe_card_id, status="canceled", reason=reason))

    issued.refresh_from_db()
    assert issued.status == ours


def test_a_lost_card_is_never_revived_by_an_event(stripe_fake, issued, commit):
    with commit():
        card_report_lost(card=issued)

    with commit():
        card_event_apply(event=_event(issued.stripe_card_id, status="active"))

    issued.refresh_from_db()
    assert issued.status == Card.Status.LOST
    assert stripe_fake.cards[issued.stripe_card_id]["status"] == "canceled"


def test_a_stale_event_does_not_undo_our_freeze(stripe_fake, issued, commit):
    with commit():
        card_freeze(card=issued)

    with commit():
        result = card_event_apply(event=_event(issued.stripe_card_id, status="active"))

    issued.refresh_from_db()
    assert issued.status == Card.Status.FROZEN
    assert stripe_fake.cards[issued.stripe_card_id]["status"] == "inactive"
    assert "kept" in result


def test_a_created_event_before_our_task_links_the_card(wallet):
    card = Card.objects.create(wallet=wallet, kind="virtual")
    event = _event("ic_early", status="active", type_="issuing_card.created")
    event["data"]["object"]["metadata"] = {"reference": card.reference}

    card_event_apply(event=event)

    card.refresh_from_db()
    assert (card.stripe_card_id, card.status) == ("ic_early", Card.Status.ACTIVE)


def test_an_event_for_an_unknown_card_is_ignored(db):
    assert card_event_apply(event=_event("ic_unknown", status="active")).startswith("ignored")
