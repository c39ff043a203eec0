"""A card payment at a shop that is one of our merchants on the card network is decided exactly
as a payment on the merchant API at that merchant: one rule table, both channels, through HTTP.
A card payment at a shop we do not know joins the operator's queue."""

import json
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from merchants.acceptors import card_acceptor_add
from merchants.models import CardAcceptor, Merchant, UnknownCardAcceptor
from merchants.models.webhooks import WebhookEvent
from merchants.services import api_key_create, merchant_suspend
from merchants.tasks import expire_authorizations
from tests.api_clients import IdempotentClient
from tests.concurrency import run_together
from tests.factories import (
    BeneficiaryFactory,
    CardFactory,
    make_allocation,
    make_merchant,
    make_payment_code,
    make_program,
)
from tests.markers import postgresql_only
from tests.stripe_issuing import stripe_events as se
from tests.stripe_issuing.hooks import webhook_secret
from wallet.models import Decision
from wallet.tasks import expire_holds

__all__ = ["webhook_secret"]

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("webhook_secret")]

# What the card network says of every shop below: a grocery in Grenoble. The rules must use the
# merchant's registered place instead, whatever the network says.
NETWORK_SAYS = se.GROCERY | {"name": "SUMUP *EPICERIE", "city": "PARIS", "postal_code": "75001"}


@pytest.fixture
def shops(db):
    """Three approved merchants, each known on the card network by its own acceptor id."""
    shops = {
        "grenoble": make_merchant(),  # commune 38185, in the centre of Grenoble
        "saint_martin": make_merchant(
            postcode="38400",
            city="Saint-Martin-d'Hères",
            commune_code="38421",
            latitude="45.16699",
            longitude="5.76522",
        ),
        "lyon": make_merchant(
            postcode="69003",
            city="Lyon",
            commune_code="69383",
            latitude="45.75970",
            longitude="4.84220",
        ),
    }
    for n, merchant in enumerate(shops.values()):
        card_acceptor_add(merchant=merchant, network_id=f"49305100000{n}", how="admin")
    return shops


def network_data(merchant: Merchant) -> dict:
    return NETWORK_SAYS | {"network_id": merchant.card_acceptors.get().network_id}


def pay_through_the_api(merchant: Merchant, wallet, amount: int) -> tuple[str, str | None]:
    client = IdempotentClient(
        HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant, name='t')[1]}"
    )
    body = {"amount": amount, "currency": "EUR", "payment_code": make_payment_code(wallet)}
    response = client.post(
        "/api/merchant/v1/authorizations", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    return body["status"], (body["decline"] or {}).get("code")


def pay_by_card(client, card, merchant_data: dict, amount: int) -> tuple[dict, dict]:
    auth = se.authorization(card=card.stripe_card_id, amount=amount, merchant=merchant_data)
    response = se.post(client, se.event("issuing_authorization.request", auth))
    assert response.status_code == 200
    return auth, response.json()


# (case, the program's rules given the shops, the shop paid at, status, reason)
RULE_TABLE = [
    ("commune, inside", lambda s: {"zone": {"communes": ["38185"]}}, "grenoble", "approved", None),
    (
        "commune, outside",
        lambda s: {"zone": {"communes": ["38185"]}},
        "saint_martin",
        "declined",
        "outside_zone",
    ),
    (
        "circle, inside",
        lambda s: {"zone": {"circles": [{"lat": 45.19, "lon": 5.72, "radius_km": 5}]}},
        "saint_martin",
        "approved",
        None,
    ),
    (
        "circle, outside",
        lambda s: {"zone": {"circles": [{"lat": 45.19, "lon": 5.72, "radius_km": 5}]}},
        "lyon",
        "declined",
        "outside_zone",
    ),
    (
        "allow list, listed",
        lambda s: {"merchants": {"allow": [s["grenoble"].pk]}},
        "grenoble",
        "approved",
        None,
    ),
    (
        "allow list, not listed",
        lambda s: {"merchants": {"allow": [s["grenoble"].pk]}},
        "lyon",
        "declined",
        "merchant_not_accepted",
    ),
    (
        "deny list, denied",
        lambda s: {"merchants": {"deny": [s["saint_martin"].pk]}},
        "saint_martin",
        "declined",
        "merchant_not_accepted",
    ),
    (
        "deny list, not denied",
        lambda s: {"merchants": {"deny": [s["saint_martin"].pk]}},
        "grenoble",
        "approved",
        None,
    ),
]


@pytest.mark.parametrize(
    ("rules", "shop", "status", "reason"),
    [case[1:] for case in RULE_TABLE],
    ids=[case[0] for case in RULE_TABLE],
)
def test_one_rule_table_decides_the_same_on_both_channels(
    client, shops, rules, shop, status, reason
):
    # given a beneficiary whose aid has this rule, with a payment code and a card
    beneficiary = BeneficiaryFactory()
    make_allocation(program=make_program(rules=rules(shops)), beneficiary=beneficiary)
    card = CardFactory(wallet=beneficiary.wallet)
    merchant = shops[shop]

    # when they pay at the shop through the merchant API, then by card
    api_outcome = pay_through_the_api(merchant, beneficiary.wallet, 1_000)
    auth, answer = pay_by_card(client, card, network_data(merchant), 1_000)

    # then both channels decide the same, for the same reason, at our merchant
    assert api_outcome == (status, reason)
    assert (answer["approved"], answer["metadata"].get("reason")) == (status == "approved", reason)
    by_api = Decision.objects.get(channel="api")
    by_card = Decision.objects.get(merchant_reference=auth["id"])
    assert (by_card.status, by_card.reason, by_card.details) == (
        by_api.status,
        by_api.reason,
        by_api.details,
    )
    assert by_card.merchant == merchant
    assert by_card.request["merchant"]["commune_code"] == merchant.commune_code
    assert not UnknownCardAcceptor.objects.exists()


def test_a_terminals_own_acceptor_decides_as_its_merchant(client, shops):
    # given a network id that is Grenoble's shop, but one terminal of it is the Lyon one's
    CardAcceptor.objects.create(
        merchant=shops["lyon"], network_id="493051000000", terminal_id="T0001", how="admin"
    )
    beneficiary = BeneficiaryFactory()
    rules = {"zone": {"communes": ["38185"]}}
    make_allocation(program=make_program(rules=rules), beneficiary=beneficiary)
    card = CardFactory(wallet=beneficiary.wallet)

    _, at_lyon = pay_by_card(client, card, network_data(shops["grenoble"]), 500)
    other_terminal = network_data(shops["grenoble"]) | {"terminal_id": "T0002"}
    _, at_grenoble = pay_by_card(client, card, other_terminal, 500)

    assert (at_lyon["approved"], at_lyon["metadata"]["reason"]) == (False, "outside_zone")
    assert at_grenoble["approved"] is True


def test_a_card_payment_at_a_suspended_merchant_is_declined(client, shops):
    # A denied shop must not slip through as an unknown one once suspended.
    merchant_suspend(merchant=shops["saint_martin"])
    card = CardFactory()
    make_allocation(beneficiary=card.wallet.beneficiary)

    _, answer = pay_by_card(client, card, network_data(shops["saint_martin"]), 500)

    assert answer == {"approved": False, "metadata": {"reason": "merchant_not_active"}}
    assert not Decision.objects.exists()


def test_a_pending_merchants_acceptor_decides_nothing_yet(client):
    pending = make_merchant(approved=False)
    card_acceptor_add(merchant=pending, network_id="493051", how="onboarding")
    card = CardFactory()
    make_allocation(beneficiary=card.wallet.beneficiary)

    auth, answer = pay_by_card(client, card, se.GROCERY | {"network_id": "493051"}, 500)

    assert answer["approved"] is True  # no rule names a place: the network's data is enough
    assert Decision.objects.get(merchant_reference=auth["id"]).merchant is None
    assert UnknownCardAcceptor.objects.get().network_id == "493051"


def test_a_merchant_neither_sees_nor_captures_a_card_payment_made_at_it(client, shops):
    card = CardFactory()
    make_allocation(beneficiary=card.wallet.beneficiary)
    merchant = shops["grenoble"]
    auth, _ = pay_by_card(client, card, network_data(merchant), 500)
    decision = Decision.objects.get(merchant_reference=auth["id"])
    api = IdempotentClient(
        HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=merchant, name='t')[1]}"
    )

    listed = api.get("/api/merchant/v1/authorizations").json()
    read = api.get(f"/api/merchant/v1/authorizations/{decision.reference}")
    capture = api.post(
        f"/api/merchant/v1/authorizations/{decision.reference}/capture",
        "{}",
        content_type="application/json",
    )

    assert decision.merchant == merchant
    assert listed["results"] == []
    assert (read.status_code, capture.status_code) == (404, 404)
    assert capture.json()["error"]["code"] == "not_found"


# The queue of unknown acceptors


def test_an_unknown_acceptor_lands_in_the_queue_with_exact_count_and_amount(client):
    card = CardFactory()
    make_allocation(beneficiary=card.wallet.beneficiary, amount=10_000)
    shop = se.GROCERY | {"network_id": "777000111"}

    pay_by_card(client, card, shop, 1_250)
    pay_by_card(client, card, shop, 30_000)  # declined: counted all the same
    auth, _ = pay_by_card(client, card, shop, 99)
    # Stripe delivers the same request twice: the decision is not taken again, nor counted.
    se.post(client, se.event("issuing_authorization.request", auth))

    row = UnknownCardAcceptor.objects.get()
    assert (row.network_id, row.terminal_id, row.currency) == ("777000111", "T0001", "EUR")
    assert (row.name, row.city, row.postcode, row.mcc) == (
        "EPICERIE DU COURS",
        "GRENOBLE",
        "38000",
        "5411",
    )
    assert (row.count, row.amount) == (3, 31_349)


def test_this_is_merchant_x_makes_the_next_card_payment_there_matched(client, admin_client):
    # given an aid for one merchant only, and a card payment at that shop before it is known
    merchant = make_merchant()
    beneficiary = BeneficiaryFactory()
    rules = {"merchants": {"allow": [merchant.pk]}}
    make_allocation(program=make_program(rules=rules), beneficiary=beneficiary)
    card = CardFactory(wallet=beneficiary.wallet)
    shop = se.GROCERY | {"network_id": "777000111"}
    _, before = pay_by_card(client, card, shop, 1_000)
    # An unknown card shop cannot be on a partners-only aid's list: it is not recognised.
    assert (before["approved"], before["metadata"]["reason"]) == (False, "merchant_not_recognised")

    # when an operator says the queued shop is this merchant
    unknown = UnknownCardAcceptor.objects.get()
    response = admin_client.post(
        reverse("admin:merchants_unknowncardacceptor_change", args=[unknown.pk]),
        {"merchant": merchant.pk},
    )
    assert response.status_code == 302

    # then the next card payment there is the merchant's, and the allow list lets it through
    auth, after = pay_by_card(client, card, shop, 1_000)
    assert after["approved"] is True
    assert Decision.objects.get(merchant_reference=auth["id"]).merchant == merchant
    assert not UnknownCardAcceptor.objects.exists()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_payments_at_an_unknown_acceptor_are_all_counted(webhook_secret):
    cards = [CardFactory() for _ in range(8)]
    for card in cards:
        make_allocation(beneficiary=card.wallet.beneficiary)
    shop = se.GROCERY | {"network_id": "777000111"}

    answers = run_together(
        [lambda card=card: pay_by_card(Client(), card, shop, 111) for card in cards]
    )

    assert all(not isinstance(answer, Exception) for answer in answers), answers
    assert all(answer[1]["approved"] for answer in answers), answers
    row = UnknownCardAcceptor.objects.get()
    assert (row.count, row.amount) == (8, 888)


def test_a_matched_card_payments_hold_expires_with_the_cards_not_the_merchant_apis(
    client, shops, settings, time_machine
):
    """The merchant API's expiry tells the merchant by webhook; a card payment's hold is the card
    channel's, released by the wallet's sweep like any card hold."""
    card = CardFactory()
    pocket = make_allocation(beneficiary=card.wallet.beneficiary).pocket
    pay_by_card(client, card, network_data(shops["grenoble"]), 700)
    time_machine.move_to(timezone.now() + timedelta(days=settings.HOLD_TTL_DAYS + 1))

    assert expire_authorizations() == 0
    assert expire_holds() == 1
    pocket.account.refresh_from_db()
    assert pocket.account.pending == 0
    assert not WebhookEvent.objects.exists()
