"""A person's file: what an agent reads when the person calls. Each aid with its balance, its
validity in whole days and its rules in plain words; the cards, which the agent may freeze; the
recent payments and refusals, with the reason in the words the person read in the app; the
messages sent, the aidants, the proposals and the history of grants and revocations.

Every part is limited by the same scope as its own admin page (NotificationAdmin, DecisionAdmin,
AllocationAdmin...): the file shows nothing that the user could not open one by one, and another
funder's aid stays private."""

import json
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import phonenumbers
from django.contrib import admin
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from beneficiary_app.api.payments import payment_data
from core.money import format_money
from core.time import format_instant, format_until
from funders.models import Allocation, Proposal
from funders.tenancy import funder_ids, is_operator
from notifications.channels import mask_email, mask_phone
from wallet.authorize import pocket_rules
from wallet.models import Beneficiary, Card, Decision, Pocket
from wallet.models.notifications import Notification

RECENT_PAYMENTS = 20
RECENT_MESSAGES = 20


def phone_search_form(term: str) -> str | None:
    """A phone number as typed by an agent ("06 70 00 00 22", "+33 6 70...") in the form it is
    stored (E.164), or None when the term is not a phone number."""
    if sum(char.isdigit() for char in term) < 9:
        return None
    try:
        number = phonenumbers.parse(term, "FR")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def validity_in_words(valid_from: datetime, valid_until: datetime | None, *, now=None) -> str:
    """ "Until 30 September 2027 included: 12 days left", in whole days as funders count them."""
    now = now or timezone.now()
    if valid_from > now:
        return gettext("From %(start)s") % {"start": format_instant(valid_from)}
    if valid_until is None:
        return gettext("No end date")
    if valid_until <= now:
        return gettext("Ended: it could be used until %(date)s") % {
            "date": format_until(valid_until)
        }
    local = timezone.localtime(valid_until)
    last_day = local.date() - timedelta(days=1) if local.time() == time(0, 0) else local.date()
    days = (last_day - timezone.localtime(now).date()).days
    if days <= 0:
        return gettext("Until %(date)s: last day today") % {"date": format_until(valid_until)}
    return ngettext(
        "Until %(date)s: %(days)d more day",
        "Until %(date)s: %(days)d more days",
        days,
    ) % {"date": format_until(valid_until), "days": days}


@dataclass
class Aid:
    pocket: Pocket
    name: str
    funder: str
    available: str
    held: str
    validity: str
    rules: list[str]
    status: str


def _scoped(request: HttpRequest, model, queryset):
    """`queryset` limited as the model's own admin page limits it for this user."""
    return admin.site._registry[model].scope(queryset, request)


def _aids(request, beneficiary: Beneficiary) -> list[Aid]:
    pockets = Pocket.objects.filter(wallet__beneficiary=beneficiary).select_related(
        "account", "allocation__program__funder"
    )
    if not is_operator(request.user):
        pockets = pockets.filter(allocation__program__funder__in=funder_ids(request.user))
    aids = []
    # The aid the person can spend first, the one ending soonest first; ended aid after.
    for pocket in sorted(
        pockets,
        key=lambda p: (
            p.allocation.status != Allocation.Status.ACTIVE,
            p.allocation.valid_until is None,
            p.allocation.valid_until or p.allocation.valid_from,
        ),
    ):
        allocation, account = pocket.allocation, pocket.account
        active = allocation.status == Allocation.Status.ACTIVE
        aids.append(
            Aid(
                pocket=pocket,
                name=allocation.program.name,
                funder=allocation.program.funder.name,
                available=format_money(account.available, account.currency),
                held=format_money(account.pending, account.currency) if account.pending else "",
                validity=(
                    validity_in_words(allocation.valid_from, allocation.valid_until)
                    if active
                    else allocation.end_reason or allocation.get_status_display()
                ),
                rules=pocket_rules(pocket).describe(currency=account.currency),
                status=allocation.get_status_display(),
            )
        )
    return aids


@dataclass
class Payment:
    decision: Decision
    at: datetime
    shop: str
    amount: str
    approved: str
    status: str
    refused: bool
    reason: str
    technical: str


def _payments(request, beneficiary: Beneficiary) -> list[Payment]:
    decisions = _scoped(
        request, Decision, Decision.objects.filter(wallet__beneficiary=beneficiary)
    ).select_related("merchant")
    payments = []
    for decision in decisions.order_by("-decided_at", "-pk")[:RECENT_PAYMENTS]:
        # The reason in the very words the app shows the person: one wording, not two.
        shown = payment_data(decision)
        technical = {"reference": decision.reference, "reason_code": decision.reason or None}
        if decision.details:
            technical["details"] = decision.details
        payments.append(
            Payment(
                decision=decision,
                at=decision.decided_at,
                shop=shown["merchant_name"],
                amount=shown["amount_display"],
                approved=shown["approved_amount_display"],
                status=decision.get_status_display(),
                refused=decision.status == Decision.Status.DECLINED,
                reason=shown["reason"]["message"] if shown["reason"] else "",
                technical=json.dumps(technical, ensure_ascii=False, indent=2, sort_keys=True),
            )
        )
    return payments


@dataclass
class Message:
    at: datetime
    kind: str
    channel: str
    recipient: str
    status: str
    text: str


def _messages(request, beneficiary: Beneficiary) -> list[Message]:
    notifications = _scoped(
        request, Notification, Notification.objects.filter(beneficiary=beneficiary)
    )
    messages = []
    for notification in notifications.order_by("-created_at", "-pk")[:RECENT_MESSAGES]:
        # A sign-in code opens the person's wallet: nobody but them reads it (as in the outbox).
        if notification.kind == Notification.Kind.SIGN_IN_CODE:
            text = gettext("(holds a one-time sign-in code: never shown)")
        else:
            text = notification.body
        if notification.channel == Notification.Channel.SMS:
            recipient = mask_phone(notification.recipient) if notification.recipient else "—"
        elif notification.channel == Notification.Channel.EMAIL:
            recipient = mask_email(notification.recipient) if notification.recipient else "—"
        else:
            recipient = gettext("the app")
        messages.append(
            Message(
                at=notification.created_at,
                kind=notification.get_kind_display(),
                channel=notification.get_channel_display(),
                recipient=recipient,
                status=notification.get_status_display(),
                text=text,
            )
        )
    return messages


@dataclass
class Event:
    at: datetime
    what: str
    allocation: Allocation


def _history(request, beneficiary: Beneficiary) -> list[Event]:
    """Grants, revocations and expiries of the user's funders' aid, the newest first."""
    allocations = _scoped(
        request, Allocation, Allocation.objects.filter(beneficiary=beneficiary)
    ).select_related("program", "created_by")
    events = []
    for allocation in allocations:
        amount = format_money(allocation.amount, allocation.currency)
        by = allocation.created_by.get_full_name() if allocation.created_by else ""
        granted = gettext("%(aid)s: %(amount)s granted") % {
            "aid": allocation.program.name,
            "amount": amount,
        }
        if by:
            granted = gettext("%(what)s by %(who)s") % {"what": granted, "who": by}
        events.append(Event(at=allocation.created_at, what=granted, allocation=allocation))
        if allocation.ended_at is None:
            continue
        if allocation.status == Allocation.Status.REVOKED:
            ended = gettext("%(aid)s: revoked") % {"aid": allocation.program.name}
            if allocation.end_reason:
                ended = gettext("%(what)s (%(reason)s)") % {
                    "what": ended,
                    "reason": allocation.end_reason,
                }
        else:
            ended = gettext("%(aid)s: ended") % {"aid": allocation.program.name}
        events.append(Event(at=allocation.ended_at, what=ended, allocation=allocation))
    return sorted(events, key=lambda event: event.at, reverse=True)


def person_file(request: HttpRequest, beneficiary: Beneficiary) -> dict:
    wallet = getattr(beneficiary, "wallet", None)
    cards = (
        list(_scoped(request, Card, Card.objects.filter(wallet=wallet)).order_by("-created_at"))
        if wallet
        else []
    )
    proposals = _scoped(
        request, Proposal, Proposal.objects.filter(beneficiary=beneficiary)
    ).select_related("campaign__program")
    return {
        "wallet": wallet,
        "aids": _aids(request, beneficiary),
        "cards": cards,
        "freezable": {Card.Status.ACTIVE},
        "unfreezable": {Card.Status.FROZEN},
        "payments": _payments(request, beneficiary),
        "messages": _messages(request, beneficiary),
        "aidants": list(wallet.aidants.order_by("-created_at")) if wallet else [],
        "proposals": [
            {
                "proposal": proposal,
                "aid": proposal.campaign.program.name,
                "amount": format_money(proposal.amount, proposal.campaign.program.currency),
            }
            for proposal in proposals.order_by("-pk")
        ],
        "history": _history(request, beneficiary),
    }
