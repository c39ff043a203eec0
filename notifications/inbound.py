"""The balance by SMS, for people without a smartphone: they text SOLDE (or BALANCE) to the
platform's number and get each aid's balance and end date back, in their language.

The SMS provider forwards each message it receives to a webhook (notifications.views);
this module decides what to answer. The answer goes through the outbox like any message, so the
funder's agents see it, and its key (the provider's message id, or the sender, words and
minute) makes a forwarded message answered once however often the provider retries."""

import hashlib
import re
import unicodedata
from collections import defaultdict
from datetime import timedelta

import phonenumbers
from django.db import transaction
from django.utils import timezone
from django.utils.functional import lazy

from core.money import format_money
from core.time import format_until
from funders.models import Allocation
from notifications.brevo import SmsEvent
from notifications.delivery import delivery_report, sms_opt_in, sms_opt_out
from notifications.services import notify
from wallet.models import Beneficiary, Pocket
from wallet.models.notifications import Notification

BALANCE_WORDS = frozenset({"solde", "balance"})
# STOP and its French and English kin, the words carriers and the CNIL expect to work; START
# undoes it.
STOP_WORDS = frozenset({"stop", "stopsms", "arret", "arretsms", "desabonner", "unsubscribe"})
START_WORDS = frozenset({"start", "startsms"})
# Answers per person per hour: beyond, a loop with an automatic responder, or someone
# texting again and again, costs the platform SMS for nothing.
REPLIES_PER_HOUR = 5

_NOT_LETTERS = re.compile(r"[^a-z]")


def _word(text: str) -> str:
    """The letters of `text`, without case, accents or anything else: "Arrêt !" is "arret"."""
    plain = "".join(
        char for char in unicodedata.normalize("NFKD", text) if not unicodedata.combining(char)
    )
    return _NOT_LETTERS.sub("", plain.casefold())


def is_balance_request(text: str) -> bool:
    """SOLDE, Solde ?, soldé, BALANCE...: the word alone, whatever its case, accents and
    punctuation."""
    return _word(text) in BALANCE_WORDS


def sender_e164(sender: str) -> str | None:
    """The sender's number in E.164 form, or None when it is not a phone number (a short code,
    a name). Providers write it "+33612345678", "33612345678" or "0612345678"."""
    compact = re.sub(r"[\s.\-()]", "", sender)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    elif compact.isdigit() and not compact.startswith("0"):
        compact = "+" + compact
    try:
        number = phonenumbers.parse(compact, "FR")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _message_key(phone: str, text: str, message_id: str) -> str:
    # Without the provider's id, the same words from the same number within the same minute
    # are one request.
    if message_id:
        source = f"id:{message_id}"
    else:
        source = f"{phone}:{text.strip()}:{timezone.now():%Y-%m-%dT%H:%M}"
    return hashlib.sha256(source.encode()).hexdigest()[:32]


def balance_reply_notify(*, beneficiary: Beneficiary, key: str) -> list[Notification]:
    """Answer by SMS with the balance and end date of each aid the beneficiary can spend now.

    One SMS per funder, each about that funder's aid only, so that each funder's agents read
    only of their own aid in the outbox; one SMS saying there is none when there is none."""
    now = timezone.now()
    pockets = (
        Pocket.objects.filter(
            wallet__beneficiary=beneficiary,
            allocation__status=Allocation.Status.ACTIVE,
            allocation__valid_from__lte=now,
        )
        .exclude(allocation__valid_until__lte=now)
        .select_related("account", "allocation__program__funder")
        .order_by("allocation__valid_until", "pk")
    )
    by_funder = defaultdict(list)
    for pocket in pockets:
        allocation = pocket.allocation
        by_funder[allocation.program.funder].append(
            {
                "name": allocation.program.name,
                "available": lazy(format_money, str)(
                    pocket.account.available, pocket.account.currency
                ),
                "valid_until": (
                    lazy(format_until, str)(allocation.valid_until)
                    if allocation.valid_until
                    else ""
                ),
            }
        )
    groups = list(by_funder.items()) or [(None, [])]
    notifications = []
    with transaction.atomic():
        for funder, lines in groups:
            notifications += notify(
                beneficiary=beneficiary,
                kind=Notification.Kind.BALANCE_REPLY,
                key=f"{key}:{beneficiary.pk}:{funder.pk if funder else 0}",
                funder=funder,
                channels=[Notification.Channel.SMS],
                context={"pockets": lines},
            )
    return notifications


def sms_inbound_receive(*, sender: str, text: str, message_id: str = "") -> list[Notification]:
    """Act on one SMS forwarded by the provider: a balance request from a beneficiary's number
    is answered (each person sharing that number gets their own answer); anything else, or a
    number no beneficiary has, gets no answer, which tells nothing to whoever sent it. Returns
    the answers written or found.

    STOP (or ARRÊT...) from any number records its opt-out, START removes it: no answer either
    way, nothing that costs the person or tells a stranger whose number it is."""
    phone = sender_e164(sender)
    if phone is None:
        return []
    if _word(text) in STOP_WORDS:
        sms_opt_out(phone=phone, source="sms")
        return []
    if _word(text) in START_WORDS:
        sms_opt_in(phone=phone)
        return []
    if not is_balance_request(text):
        return []
    key = _message_key(phone, text, message_id)
    since = timezone.now() - timedelta(hours=1)
    notifications = []
    for beneficiary in Beneficiary.objects.filter(phone=phone).order_by("pk"):
        answered = Notification.objects.filter(
            beneficiary=beneficiary,
            kind=Notification.Kind.BALANCE_REPLY,
            dedupe_key__startswith=f"{Notification.Kind.BALANCE_REPLY}:{key}:",
        )
        if answered.exists():
            notifications += answered
            continue
        recent = Notification.objects.filter(
            beneficiary=beneficiary,
            kind=Notification.Kind.BALANCE_REPLY,
            created_at__gte=since,
        )
        if recent.count() >= REPLIES_PER_HOUR:
            continue
        notifications += balance_reply_notify(beneficiary=beneficiary, key=key)
    return notifications


_BREVO_DELIVERY = {
    "delivered": Notification.Delivery.DELIVERED,
    "soft_bounce": Notification.Delivery.DEFERRED,
    "hard_bounce": Notification.Delivery.BOUNCED,
    "rejected": Notification.Delivery.BOUNCED,
    "blacklisted": Notification.Delivery.BOUNCED,
    "unsubscribe": Notification.Delivery.OPTED_OUT,
    "unsubscribed": Notification.Delivery.OPTED_OUT,
}


def brevo_events_receive(events: list[SmsEvent]) -> None:
    """Act on Brevo's SMS events: a delivery report updates its message, a reply is an inbound
    SMS, an unsubscribe records the number's opt-out. Any other status (sent, accepted...) says
    nothing the outbox does not know."""
    for event in events:
        if event.status in ("replied", "reply"):
            sms_inbound_receive(sender=event.phone, text=event.reply, message_id=event.event_id)
            continue
        delivery = _BREVO_DELIVERY.get(event.status)
        if delivery is None:
            continue
        delivery_report(
            channel=Notification.Channel.SMS,
            provider_message_id=event.message_id,
            delivery=delivery,
            detail=event.detail or event.status,
        )
        if delivery == Notification.Delivery.OPTED_OUT:
            phone = sender_e164(event.phone)
            if phone is not None:
                sms_opt_out(phone=phone, source="provider")
