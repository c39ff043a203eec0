"""A beneficiary's personal data on request (GDPR articles 15 and 17): everything we hold about
the person as JSON, and its erasure.

Erasure pseudonymises: the person's row stays, named "Personne effacée #<id>", because the money
history points at it (allocations, pockets, payment decisions, the ledger) and funders account
for that history. What says who the person is or how to reach them goes: contact details (past
ones kept by contact changes too), the funders' file numbers, the outbox's addresses and texts,
aidants' contacts, sign-in codes, push subscriptions, app sessions, and the name wherever it was
copied (ledger account labels, the admin's log, allocation import reports, Stripe's cardholder
in stored Stripe events). No money moves: `ledger verify` and every funder's figures are the
same before and after.

Money left on the person's pockets (available or held by a payment in progress) refuses the
erasure unless `force`: revoking the aid first returns it to the funder, which is the funder's
decision. Forced, the money stays where it is, unspendable (wallet frozen, cards cancelled),
until the aid expires or is revoked and the usual sweep returns it to the program.

Who may ask: see SECURITY.md ("Personal data"). The services do not check roles; the admin does.
"""

import logging
from collections.abc import Collection
from datetime import datetime
from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Q, Sum, TextField
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from beneficiary_app.selectors import payment_list, payment_merchant_name, payment_money
from core.errors import DomainError, InvalidState
from funders import eligibility
from funders.campaigns import proposals_withdraw
from funders.models import (
    Allocation,
    AllocationImport,
    BeneficiaryProfile,
    Enrolment,
    ProfileImport,
    Proposal,
    RecurringAllocation,
)
from ledger.models import Account, Transfer
from notifications.preferences import notification_preferences
from stripe_issuing.cards import card_cancel
from wallet.locks import wallet_lock
from wallet.models import Beneficiary, Card, ContactChangeRequest, Decision, Pocket, Wallet
from wallet.models.access import Aidant, AppToken, SignInCode
from wallet.models.notifications import Notification, PushSubscription
from wallet.models.stripe_events import StripeEvent
from wallet.services import wallet_freeze

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "aidwallet-personal-data/1"
PSEUDONYM_FIRST_NAME = "Personne effacée"


def pseudonym(beneficiary: Beneficiary) -> str:
    return f"{PSEUDONYM_FIRST_NAME} #{beneficiary.pk}"


class ErasureReasonMissing(DomainError):
    code = "erasure_reason_required"
    default_message = _("Say why the data is erased, for example: the person's request of 12 May.")

    def __init__(self, message=None, *, field: str | None = "reason", **details):
        super().__init__(message, field=field, **details)


class BeneficiaryHoldsMoney(InvalidState):
    code = "beneficiary_holds_money"
    default_message = _(
        "This person still has aid to spend or a payment in progress. Revoke their aid first, "
        "or confirm that the money stays unspent until the aid ends."
    )


# --- export --------------------------------------------------------------------------------


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _funder_scope(funders: Collection[int] | None, path: str) -> Q:
    return Q() if funders is None else Q(**{f"{path}__in": funders})


def beneficiary_data_export(
    *, beneficiary: Beneficiary, funders: Collection[int] | None = None
) -> dict[str, Any]:
    """Everything we hold about the person, ready for json.dumps. Amounts in minor units.

    `funders`: the funders whose view to export, for their staff: their own file number, aid
    and payments, and the messages about their aid or the wallet as a whole (as the admin shows
    them). None exports everything: the platform operator's answer to the person's request."""
    wallet = Wallet.objects.get(beneficiary=beneficiary)
    payments = payment_list(wallet=wallet)
    if funders is not None:
        # As the payments' admin shows them: those the funder's pockets paid, and the declined
        # attempts of a wallet that holds its aid.
        seen = Decision.objects.filter(
            Q(holds__pocket__allocation__program__funder__in=funders)
            | Q(
                status=Decision.Status.DECLINED,
                wallet__pockets__allocation__program__funder__in=funders,
            )
        )
        payments = payments.filter(pk__in=seen.values("pk"))
    refund_path = "refund_of__pending_transfer__decision_hold"
    refunds = Transfer.objects.filter(
        _funder_scope(funders, f"{refund_path}__pocket__allocation__program__funder"),
        kind=Transfer.Kind.REFUND,
        **{f"{refund_path}__decision__wallet": wallet},
    ).select_related(f"{refund_path}__decision")
    return {
        "format": EXPORT_FORMAT,
        "exported_at": _when(timezone.now()),
        "amounts_in": "minor units of the currency given (cents for EUR)",
        "person": {
            "id": beneficiary.pk,
            "first_name": beneficiary.first_name,
            "last_name": beneficiary.last_name,
            "email": beneficiary.email,
            "phone": str(beneficiary.phone) if beneficiary.phone else "",
            "postcode": beneficiary.postcode,
            "preferred_language": beneficiary.preferred_language,
            "consent_given_at": _when(beneficiary.consent_given_at),
            "registered_at": _when(beneficiary.created_at),
            "erased_at": _when(beneficiary.erased_at),
        },
        "contact_changes": [
            {
                "contact": change.field,
                "before": change.old_value,
                "after": change.new_value,
                "status": change.status,
                "asked_at": _when(change.requested_at),
                "decided_at": _when(change.decided_at),
            }
            for change in ContactChangeRequest.objects.filter(beneficiary=beneficiary).order_by(
                "requested_at", "pk"
            )
        ],
        "enrolments": [
            {
                "funder": enrolment.funder.name,
                "file_number": enrolment.reference,
                "enrolled_at": _when(enrolment.created_at),
            }
            for enrolment in Enrolment.objects.filter(
                _funder_scope(funders, "funder"), beneficiary=beneficiary
            ).select_related("funder")
        ],
        "eligibility_profiles": [
            _profile(profile)
            for profile in BeneficiaryProfile.objects.filter(
                _funder_scope(funders, "enrolment__funder"), enrolment__beneficiary=beneficiary
            ).select_related("enrolment__funder")
        ],
        "aid_proposals": [
            {
                "funder": proposal.campaign.program.funder.name,
                "program": proposal.campaign.program.name,
                "campaign": proposal.campaign.name,
                "amount": proposal.amount,
                "amount_granted": proposal.granted_amount,
                "currency": proposal.campaign.program.currency,
                "criteria_met": [eligibility.explain(reason) for reason in proposal.reasons],
                "criteria_no_longer_met": [eligibility.explain(r) for r in proposal.unmet],
                "status": proposal.status,
                "decided_at": _when(proposal.decided_at),
                "decision_reason": proposal.decision_reason,
                "proposed_at": _when(proposal.created_at),
            }
            for proposal in Proposal.objects.filter(
                _funder_scope(funders, "campaign__program__funder"), beneficiary=beneficiary
            )
            .select_related("campaign__program__funder")
            .order_by("created_at", "pk")
        ],
        "wallet": {
            "frozen": wallet.is_frozen,
            "frozen_reason": wallet.frozen_reason,
            "created_at": _when(wallet.created_at),
        },
        "aid": [
            {
                "funder": allocation.program.funder.name,
                "program": allocation.program.name,
                "amount": allocation.amount,
                "currency": allocation.currency,
                "valid_from": _when(allocation.valid_from),
                "valid_until": _when(allocation.valid_until),
                "status": allocation.status,
                "granted_at": _when(allocation.created_at),
                "ended_at": _when(allocation.ended_at),
                "available": allocation.pocket.account.available,
                "held": allocation.pocket.account.pending,
            }
            for allocation in Allocation.objects.filter(
                _funder_scope(funders, "program__funder"), beneficiary=beneficiary
            )
            .select_related("program__funder", "pocket__account")
            .order_by("created_at", "pk")
        ],
        "cards": [
            # Named by their last four digits: the reference, which payments were made with,
            # would reach whoever handles the file (see SECURITY.md).
            {
                "kind": card.kind,
                "status": card.status,
                "last4": card.last4,
                "created_at": _when(card.created_at),
            }
            for card in Card.objects.filter(wallet=wallet).order_by("pk")
        ],
        "payments": [_payment(decision) for decision in payments.order_by("decided_at", "pk")],
        "refunds": [
            {
                "payment": refund.refund_of.pending_transfer.decision_hold.decision.reference,
                "amount": refund.amount,
                "currency": refund.currency,
                "at": _when(refund.created_at),
            }
            for refund in refunds.order_by("created_at", "pk")
        ],
        "messages": [
            _message(notification)
            for notification in Notification.objects.filter(
                Q() if funders is None else Q(funder__isnull=True) | Q(funder__in=funders),
                beneficiary=beneficiary,
            ).order_by("created_at", "pk")
        ],
        "aidants": [
            {
                "name": aidant.name,
                "contact": aidant.contact,
                "channel": aidant.channel,
                "authorised_at": _when(aidant.created_at),
                "withdrawn_at": _when(aidant.revoked_at),
            }
            for aidant in Aidant.objects.filter(wallet=wallet).order_by("pk")
        ],
        "app_sessions": [
            {
                "read_only_aidant": token.read_only,
                "signed_in_at": _when(token.created_at),
                "last_used_at": _when(token.last_used_at),
                "signed_out_at": _when(token.revoked_at),
            }
            for token in AppToken.objects.filter(wallet=wallet).order_by("pk")
        ],
        "notification_preferences": [
            {"message": choice.kind, "channel": choice.channel, "sent": choice.enabled}
            for choice in notification_preferences(beneficiary=beneficiary)
        ],
        "push_subscriptions": [
            {
                "endpoint": subscription.endpoint,
                "created_at": _when(subscription.created_at),
                "turned_off_at": _when(subscription.disabled_at),
            }
            for subscription in PushSubscription.objects.filter(beneficiary=beneficiary)
        ],
    }


def _profile(profile: BeneficiaryProfile) -> dict[str, Any]:
    return {
        "funder": profile.enrolment.funder.name,
        "postcode": profile.postcode,
        "commune": profile.commune,
        "birth_date": profile.birth_date.isoformat() if profile.birth_date else None,
        "household_size": profile.household_size,
        "dependent_children": profile.dependent_children,
        "income_bracket": profile.income_bracket,
        "other_facts": profile.attributes,
        "legal_basis": profile.legal_basis,
        "updated_at": _when(profile.updated_at),
    }


def _payment(decision: Decision) -> dict[str, Any]:
    money = payment_money(decision)
    return {
        "reference": decision.reference,
        "decided_at": _when(decision.decided_at),
        "channel": decision.channel,
        "shop": payment_merchant_name(decision),
        "amount": decision.amount,
        "currency": decision.currency,
        "status": decision.status,
        "reason": decision.reason,
        "approved_amount": decision.approved_amount,
        "held": money.held,
        "captured": money.captured,
        "refunded": money.refunded,
    }


def _message(notification: Notification) -> dict[str, Any]:
    # A sign-in code still in its lifetime opens the wallet: it never leaves the outbox.
    secret = notification.kind == Notification.Kind.SIGN_IN_CODE
    return {
        "kind": notification.kind,
        "channel": notification.channel,
        "sent_to": notification.recipient,
        "subject": "" if secret else notification.subject,
        "text": gettext("(a one-time sign-in code)") if secret else notification.body,
        "status": notification.status,
        "created_at": _when(notification.created_at),
        "sent_at": _when(notification.sent_at),
    }


# --- erasure -------------------------------------------------------------------------------


def _money_left(wallet: Wallet) -> dict[str, int]:
    totals = Account.objects.filter(pocket__wallet=wallet).aggregate(
        balance=Sum("balance"), held=Sum("pending")
    )
    return {"balance": totals["balance"] or 0, "held": totals["held"] or 0}


def _own_contacts(person: Beneficiary) -> set[str]:
    """The contacts sign-in codes were kept for, in the form sign-in stores them: the person's
    own, and every one a code was sent to from their wallet (their aidants' included)."""
    contacts = set(
        Notification.objects.filter(
            beneficiary=person, kind=Notification.Kind.SIGN_IN_CODE
        ).values_list("recipient", flat=True)
    )
    if person.email:
        contacts.add(person.email.lower())
    if person.phone:
        contacts.add(person.phone.as_e164)
    # The contacts the person had before a change (a phone is kept in E.164 there too).
    for field, value in ContactChangeRequest.objects.filter(beneficiary=person).values_list(
        "field", "old_value"
    ):
        contacts.add(value.lower() if field == ContactChangeRequest.Field.EMAIL else value)
    return contacts - {""}


def _redact_stripe(node: Any, cardholders: set[str]) -> Any:
    """The payload with the person's cardholder (name, contacts, address) and the shipping
    name of their physical cards blanked; everything else as Stripe sent it."""
    if isinstance(node, list):
        return [_redact_stripe(item, cardholders) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _redact_stripe(value, cardholders) for key, value in node.items()}
    kind = node.get("object")
    if kind == "issuing.cardholder" and node.get("id") in cardholders:
        node.update(name="", email=None, phone_number=None, individual=None, billing=None)
    holder = node.get("cardholder")
    holder_id = holder.get("id") if isinstance(holder, dict) else holder
    if kind == "issuing.card" and holder_id in cardholders and node.get("shipping"):
        node["shipping"] = None
    return node


def _pseudonymise_stripe_events(wallet: Wallet) -> None:
    cardholders = set(
        Card.objects.filter(wallet=wallet)
        .exclude(stripe_cardholder_id="")
        .values_list("stripe_cardholder_id", flat=True)
    )
    if not cardholders:
        return
    mentions = Q()
    for cardholder in cardholders:
        mentions |= Q(text__contains=cardholder)
    events = StripeEvent.objects.annotate(text=Cast("payload", TextField())).filter(mentions)
    for event in events:
        event.payload = _redact_stripe(event.payload, cardholders)
        event.save(update_fields=["payload"])


def _pseudonymise_import_reports(person: Beneficiary, name: str) -> None:
    # Only imports of funders that know the person can have matched or created them.
    finished = (
        AllocationImport.Status.APPLIED,
        AllocationImport.Status.INVALID,
        AllocationImport.Status.FAILED,
    )
    imports = AllocationImport.objects.filter(
        program__funder__enrolments__beneficiary=person
    ).distinct()
    for allocation_import in imports:
        rows = [row for row in allocation_import.report if row.get("beneficiary_id") == person.pk]
        if not rows:
            continue
        for row in rows:
            row.update(name=name, beneficiary_name=name, reference="")
        changed = ["report"]
        if allocation_import.status in finished:
            # Nothing reads the file of a finished import again; its report keeps each row's
            # result. An unfinished one still needs its file to be applied.
            allocation_import.content = b""
            changed.append("content")
        allocation_import.save(update_fields=changed)
    for profile_import in ProfileImport.objects.filter(
        funder__enrolments__beneficiary=person
    ).distinct():
        rows = [row for row in profile_import.report if row.get("beneficiary_id") == person.pk]
        if not rows:
            continue
        for row in rows:
            row.update(name=name, reference="")
        changed = ["report"]
        if profile_import.status in finished:
            profile_import.content = b""
            changed.append("content")
        profile_import.save(update_fields=changed)


def _rename_copies_of_the_name(person: Beneficiary, wallet: Wallet, name: str) -> None:
    """The admin's log and the ledger's account labels, which copied the name."""

    def rename(model, pk, text: str) -> None:
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(model), object_id=str(pk)
        ).update(object_repr=text[:200])

    rename(Beneficiary, person.pk, name)
    rename(Wallet, wallet.pk, name)
    for pocket in Pocket.objects.filter(wallet=wallet).select_related("allocation__program"):
        program = pocket.allocation.program.name
        rename(Allocation, pocket.allocation_id, f"{program} → {name}")
        rename(Pocket, pocket.pk, f"{program} ({name})")
        # The ledger labels a pocket's account with its holder's name (funders.services).
        Account.objects.filter(pk=pocket.account_id).update(name=f"{program} — {name}"[:200])


def beneficiary_erase(
    *, beneficiary: Beneficiary, by: AbstractBaseUser | None, reason: str, force: bool = False
) -> Beneficiary:
    """Erase the person's personal data, keeping the money history under a pseudonym. Erasing
    an erased person changes nothing. BeneficiaryHoldsMoney while money is left on their
    pockets, unless `force`."""
    reason = reason.strip()
    if not reason:
        raise ErasureReasonMissing()
    with transaction.atomic():
        # The wallet's lock, as the authorization engine takes it: no payment is decided while
        # the money left is checked and the cards are closed.
        wallet = wallet_lock(beneficiary.wallet.pk)
        person = Beneficiary.objects.select_for_update().get(pk=beneficiary.pk)
        if person.erased_at is not None:
            return person
        left = _money_left(wallet)
        if (left["balance"] or left["held"]) and not force:
            raise BeneficiaryHoldsMoney(**left)
        now = timezone.now()
        name = pseudonym(person)

        wallet_freeze(wallet=wallet, reason=gettext("Personal data erased"))
        for card in Card.objects.filter(wallet=wallet).exclude(
            status__in=[Card.Status.LOST, Card.Status.CANCELED]
        ):
            card_cancel(card=card)
        AppToken.objects.filter(wallet=wallet, revoked_at__isnull=True).update(revoked_at=now)
        SignInCode.objects.filter(contact__in=_own_contacts(person)).delete()
        aidants = Aidant.objects.filter(wallet=wallet)
        aidants.filter(revoked_at__isnull=True).update(revoked_at=now)
        aidants.update(name="", contact="")
        PushSubscription.objects.filter(beneficiary=person).delete()

        outbox = Notification.objects.filter(beneficiary=person)
        outbox.filter(status=Notification.Status.QUEUED).update(
            status=Notification.Status.SKIPPED, skip_reason=Notification.SkipReason.NO_CONTACT
        )
        # No address is left to send to: nothing is tried again.
        outbox.update(recipient="", subject="", body="", error="", next_attempt_at=None)

        # Who changed the person's contacts and when stays; the contacts go.
        changes = ContactChangeRequest.objects.filter(beneficiary=person)
        changes.filter(status=ContactChangeRequest.Status.PENDING).update(
            status=ContactChangeRequest.Status.WITHDRAWN
        )
        changes.update(old_value="", new_value="")
        Enrolment.objects.filter(beneficiary=person).update(reference="")
        # What funders knew for their criteria goes; decided proposals stay, as the record of
        # each decision a funder must be able to explain, and pending ones are withdrawn.
        BeneficiaryProfile.objects.filter(enrolment__beneficiary=person).delete()
        pending = Proposal.objects.filter(beneficiary=person, status=Proposal.Status.PENDING)
        gone = [eligibility.situation(eligibility.NOT_FOLLOWED)]
        proposals_withdraw(reasons={pk: gone for pk in pending.values_list("pk", flat=True)}, by=by)
        for schedule in RecurringAllocation.objects.filter(beneficiaries=person):
            schedule.beneficiaries.remove(person)
        _pseudonymise_import_reports(person, name)
        _rename_copies_of_the_name(person, wallet, name)
        _pseudonymise_stripe_events(wallet)

        person.first_name, person.last_name = PSEUDONYM_FIRST_NAME, f"#{person.pk}"
        person.email = person.phone = person.postcode = ""
        person.erased_at, person.erased_by, person.erasure_reason = now, by, reason[:300]
        person.save(
            update_fields=[
                "first_name",
                "last_name",
                "email",
                "phone",
                "postcode",
                "erased_at",
                "erased_by",
                "erasure_reason",
            ]
        )
    logger.info(
        "beneficiary %s: personal data erased by user %s", person.pk, getattr(by, "pk", None)
    )
    return person
