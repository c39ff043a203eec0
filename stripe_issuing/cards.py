"""Cards at Stripe Issuing: issuing them, keeping Stripe's card status in line with ours, and
reading Stripe's card events.

Our status is the authority for the authorization engine; Stripe's card status is a first line
that refuses what would be refused anyway. Freezing and unfreezing happen here (the app, the
admin) and are pushed to Stripe after commit; from Stripe we take what only Stripe knows: the
last four digits, a physical card's activation, a cancellation."""

import logging

import iso18245
import stripe
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from core.errors import DomainError, InvalidState
from core.stripe import stripe_client
from engine.categories import CASH_MCCS
from engine.geo import TERRITORY_NAMES, departement_from_postcode
from stripe_issuing import tasks
from stripe_issuing.client import cards_enabled
from wallet.models import Beneficiary, Card, Wallet

logger = logging.getLogger(__name__)


class CardsNotAvailable(DomainError):
    code = "cards_not_available"
    status = 503
    default_message = _("Payment cards are not available on this platform.")


class CardAlreadyClosed(InvalidState):
    code = "card_closed"
    default_message = _("This card was reported lost or cancelled. It can no longer be used.")


# Our status -> what Stripe must hold. A frozen card is "inactive" at Stripe: it can be
# reactivated, where "canceled" is for good.
_STRIPE_STATUS = {
    Card.Status.INACTIVE: "inactive",
    Card.Status.ACTIVE: "active",
    Card.Status.FROZEN: "inactive",
    Card.Status.LOST: "canceled",
    Card.Status.CANCELED: "canceled",
}
_CLOSED = (Card.Status.LOST, Card.Status.CANCELED)


def blocked_categories() -> list[str]:
    """Stripe's names for our cash codes. Codes Stripe has no name for are left to our engine,
    which refuses them anyway."""
    names = {iso18245.get_mcc(code).stripe_code for code in CASH_MCCS}
    return sorted(name for name in names if name)


def card_issue(*, wallet: Wallet, kind: str) -> Card:
    """Order a card for the wallet's holder: our record now (not yet active), Stripe's card
    from a task after commit, so a slow or failing Stripe never holds up the caller."""
    if not cards_enabled():
        raise CardsNotAvailable()
    if kind not in Card.Kind.values:
        raise DomainError(field="kind")
    card = Card.objects.create(wallet=wallet, kind=kind, status=Card.Status.INACTIVE)
    transaction.on_commit(lambda: tasks.issue_card.delay(card.pk))
    return card


def _billing_address(beneficiary: Beneficiary) -> dict:
    # Stripe requires a billing address and we keep no street address: the beneficiary's
    # postcode and the name of its département when known, else the platform's address.
    departement = departement_from_postcode(beneficiary.postcode) if beneficiary.postcode else None
    if departement:
        postcode, city = beneficiary.postcode, TERRITORY_NAMES[departement]
    else:
        postcode, city = settings.STRIPE_BILLING_POSTCODE, settings.STRIPE_BILLING_CITY
    return {
        "line1": settings.STRIPE_BILLING_LINE1,
        "postal_code": postcode,
        "city": city,
        "country": "FR",
    }


def _cardholder_id(client, beneficiary: Beneficiary) -> str:
    known = (
        Card.objects.filter(wallet__beneficiary=beneficiary)
        .exclude(stripe_cardholder_id="")
        .values_list("stripe_cardholder_id", flat=True)
        .first()
    )
    if known:
        return known
    params = {
        "type": "individual",
        "name": f"{beneficiary.first_name} {beneficiary.last_name}"[:24],
        "billing": {"address": _billing_address(beneficiary)},
        "individual": {"first_name": beneficiary.first_name, "last_name": beneficiary.last_name},
        "metadata": {"beneficiary": str(beneficiary.pk)},
    }
    if beneficiary.email:
        params["email"] = beneficiary.email
    if beneficiary.phone:
        params["phone_number"] = str(beneficiary.phone)
    cardholder = client.v1.issuing.cardholders.create(
        params, {"idempotency_key": f"cardholder:{beneficiary.pk}"}
    )
    return cardholder.id


def card_provision(*, card: Card) -> Card:
    """Create the Stripe cardholder and card behind our card. Safe to run again: a card that
    has its Stripe id is left alone, and both creations carry idempotency keys derived from our
    records, so a retry after a lost answer gets Stripe's first objects back."""
    if not cards_enabled():
        raise CardsNotAvailable()
    card = Card.objects.select_related("wallet__beneficiary").get(pk=card.pk)
    if card.stripe_card_id:
        return card
    client = stripe_client()
    beneficiary = card.wallet.beneficiary
    cardholder_id = _cardholder_id(client, beneficiary)
    params = {
        "cardholder": cardholder_id,
        "currency": "eur",
        "type": card.kind,
        "status": "active" if card.kind == Card.Kind.VIRTUAL else "inactive",
        "spending_controls": {
            "blocked_categories": blocked_categories(),
            "spending_limits": [
                {
                    "amount": settings.STRIPE_CARD_PER_AUTHORIZATION_CAP,
                    "interval": "per_authorization",
                }
            ],
        },
        "metadata": {"reference": card.reference},
    }
    if card.kind == Card.Kind.PHYSICAL:
        params["shipping"] = {
            "name": f"{beneficiary.first_name} {beneficiary.last_name}",
            "address": _billing_address(beneficiary),
        }
    stripe_card = client.v1.issuing.cards.create(
        params, {"idempotency_key": f"card:{card.reference}"}
    )
    with transaction.atomic():
        locked = Card.objects.select_for_update().get(pk=card.pk)
        if locked.stripe_card_id:  # a card event linked it meanwhile
            return locked
        locked.stripe_card_id = stripe_card.id
        locked.stripe_cardholder_id = cardholder_id
        locked.last4 = stripe_card.last4
        if locked.status == Card.Status.INACTIVE and stripe_card.status == "active":
            locked.status = Card.Status.ACTIVE
        locked.save(update_fields=["stripe_card_id", "stripe_cardholder_id", "last4", "status"])
        if _STRIPE_STATUS[locked.status] != stripe_card.status:
            # Frozen or reported lost while Stripe was making it: Stripe must follow.
            card_status_push_on_commit(card=locked)
    return locked


def card_status_push_on_commit(*, card: Card) -> None:
    """Queue the push of the card's status to Stripe once the change is committed."""
    if not card.stripe_card_id or not cards_enabled():
        return
    transaction.on_commit(lambda: tasks.push_card_status.delay(card.pk))


def card_status_push(*, card: Card) -> str:
    """Make Stripe's card status ours. The task reads the status when it runs, so pushes that
    run late or out of order still leave Stripe with the newest status."""
    card = Card.objects.get(pk=card.pk)
    target = _STRIPE_STATUS[card.status]
    params = {"status": target}
    if card.status == Card.Status.LOST:
        params["cancellation_reason"] = "lost"
    client = stripe_client()
    try:
        client.v1.issuing.cards.update(card.stripe_card_id, params)
    except stripe.InvalidRequestError:
        # Stripe refuses any change to a cancelled card: done if that is what we wanted.
        if client.v1.issuing.cards.retrieve(card.stripe_card_id).status != target:
            raise
    return target


def card_cancel(*, card: Card) -> Card:
    """Close the card for good (staff): every payment with it is refused from now on."""
    with transaction.atomic():
        locked = Card.objects.select_for_update().get(pk=card.pk)
        if locked.status == Card.Status.CANCELED:
            return locked
        if locked.status == Card.Status.LOST:
            raise CardAlreadyClosed()
        locked.status = Card.Status.CANCELED
        locked.save(update_fields=["status"])
        card_status_push_on_commit(card=locked)
    return locked


def card_event_apply(*, event: dict) -> str:
    """Apply an `issuing_card.created` or `issuing_card.updated` event. Returns what it did.

    From Stripe we take the last four digits, a physical card's activation and a cancellation
    (a lost or stolen card is "lost" here). A lost or cancelled card never comes back. When
    Stripe says active or inactive against our freeze or unfreeze (an event older than our last
    change, or a change made on Stripe's dashboard), our status wins and is pushed again."""
    stripe_card = event["data"]["object"]
    reference = (stripe_card.get("metadata") or {}).get("reference")
    with transaction.atomic():
        card = (
            Card.objects.select_for_update().filter(stripe_card_id=stripe_card["id"]).first()
            or Card.objects.select_for_update()
            .filter(reference=reference or "", stripe_card_id__isnull=True)
            .first()
        )
        if card is None:
            return f"ignored: no card for {stripe_card['id']}"
        before = card.status
        card.stripe_card_id = stripe_card["id"]
        cardholder = stripe_card.get("cardholder")
        if isinstance(cardholder, dict):
            cardholder = cardholder.get("id")
        card.stripe_cardholder_id = cardholder or card.stripe_cardholder_id
        card.last4 = stripe_card.get("last4") or card.last4
        status = stripe_card.get("status")
        resync = False
        if card.status in _CLOSED:
            resync = status != "canceled"
        elif status == "canceled":
            lost = stripe_card.get("cancellation_reason") in ("lost", "stolen")
            card.status = Card.Status.LOST if lost else Card.Status.CANCELED
        elif status == "active" and card.status == Card.Status.INACTIVE:
            card.status = Card.Status.ACTIVE
        else:
            resync = status != _STRIPE_STATUS[card.status]
        card.save(update_fields=["stripe_card_id", "stripe_cardholder_id", "last4", "status"])
        if resync:
            card_status_push_on_commit(card=card)
    if resync:
        return f"{card.reference}: kept {card.status}, pushed to Stripe (Stripe said {status})"
    if before != card.status:
        return f"{card.reference}: {before} -> {card.status}"
    return f"{card.reference}: unchanged ({card.status})"
