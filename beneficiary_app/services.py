"""Writes of the beneficiary app: sign-in codes and tokens, aidants, the beneficiary's
language, and the card actions a beneficiary takes in one tap.

Sign-in: a contact (an email address or a mobile number) asks for a code; if it is a
beneficiary's recorded contact, or the contact of an aidant a beneficiary authorised, a 6-digit
code is sent to it. The code is stored as an HMAC keyed with SECRET_KEY, works once, for
APP_SIGN_IN_CODE_TTL_SECONDS, and dies after MAX_WRONG_TRIES wrong tries; only the contact's
newest code works. A good code gives one token per wallet the contact may see: the
beneficiary's own wallet (full access) first, then the wallets whose holder authorised the
contact as their aidant (read-only)."""

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.errors import DomainError, InvalidState
from core.validators import NON_ASCII_EMAIL_MESSAGE, email_canonical
from notifications.channels import sms_text
from notifications.privacy import with_privacy_notice
from notifications.tasks import send_notification
from stripe_issuing.cards import card_status_push_on_commit
from wallet.locks import wallet_lock
from wallet.models import Beneficiary, Card, Wallet
from wallet.models.access import Aidant, AppToken, ContactChannel, SignInCode
from wallet.models.notifications import Notification

MAX_WRONG_TRIES = 5
# Aidants one wallet may have at once: enough for a family and a social worker or two.
MAX_AIDANTS = 5
# last_used_at only tells when a token goes idle: writing it on every request would be waste.
_LAST_USED_RESOLUTION = timedelta(minutes=10)
_CODE = re.compile(r"[0-9]{6}")
_HMAC_SALT = "wallet.app.SignInCode.digest"


class InvalidContact(DomainError):
    code = "invalid_contact"
    default_message = _("Enter an email address or a mobile phone number, such as 06 12 34 56 78.")

    def __init__(self, message=None, *, field: str | None = "contact", **details):
        super().__init__(message, field=field, **details)


class NonAsciiEmail(InvalidContact):
    code = "non_ascii_email"
    default_message = NON_ASCII_EMAIL_MESSAGE


class InvalidSignInCode(DomainError):
    """One answer for a wrong, expired, used or dead code, and for a contact with no code: the
    client learns nothing more than "this did not work"."""

    code = "invalid_code"
    default_message = _("This code does not work. Check it, or ask for a new code.")

    def __init__(self, message=None, *, field: str | None = "code", **details):
        super().__init__(message, field=field, **details)


class ReadOnly(DomainError):
    code = "read_only"
    status = 403
    default_message = _(
        "You can see this wallet because its holder allowed it, but you cannot change anything."
    )


class OwnContact(DomainError):
    code = "own_contact"
    default_message = _("This is your own contact. Give the contact of the person helping you.")

    def __init__(self, message=None, *, field: str | None = "contact", **details):
        super().__init__(message, field=field, **details)


class TooManyAidants(DomainError):
    code = "too_many_aidants"
    status = 409


class CardClosed(InvalidState):
    code = "card_closed"
    default_message = _("This card was reported lost or cancelled. It can no longer be used.")


class CardNotActive(InvalidState):
    code = "card_not_active"
    default_message = _("This card is not active yet.")


# --- contacts -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    value: str  # an email address in lower case, or a phone number in E.164
    channel: str  # ContactChannel


def contact_parse(text: str) -> Contact:
    """The contact as sign-in compares it: "Marie.Dupont@Example.org" and "06 12 34 56 78" are
    "marie.dupont@example.org" (see email_canonical) and "+33612345678". InvalidContact when it
    is neither, NonAsciiEmail when the part of an address before the @ is not ASCII."""
    text = text.strip()
    if "@" in text:
        try:
            return Contact(email_canonical(text), ContactChannel.EMAIL)
        except ValidationError as exc:
            if exc.code == "non_ascii_email":
                raise NonAsciiEmail() from exc
            raise InvalidContact() from exc
    try:
        number = phonenumbers.parse(text, "FR")
    except phonenumbers.NumberParseException as exc:
        raise InvalidContact() from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidContact()
    return Contact(
        phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), ContactChannel.SMS
    )


def _owner_filter(contact: Contact, prefix: str = "") -> Q:
    # "=" on the stored canonical address: never iexact, whose UPPER() PostgreSQL folds with
    # Unicode rules, making gmail.com with a dotless i (U+0131) equal to gmail.com.
    if contact.channel == ContactChannel.EMAIL:
        return Q(**{f"{prefix}email": contact.value})
    return Q(**{f"{prefix}phone": contact.value})


def _grants(contact: Contact) -> list[tuple[Wallet, Aidant | None]]:
    """The wallets a contact may sign in to: its own first, then those it helps with."""
    own = Wallet.objects.filter(_owner_filter(contact, "beneficiary__")).order_by("pk")
    helped = (
        Aidant.objects.filter(contact=contact.value, revoked_at__isnull=True)
        .select_related("wallet__beneficiary")
        .order_by("pk")
    )
    return [(wallet, None) for wallet in own.select_related("beneficiary")] + [
        (aidant.wallet, aidant) for aidant in helped
    ]


# --- sign-in codes ------------------------------------------------------------------------


def _code_lifetime() -> timedelta:
    return timedelta(seconds=settings.APP_SIGN_IN_CODE_TTL_SECONDS)


def _digest(contact: str, code: str) -> str:
    # The contact is in the message: the same six digits sent to two people differ here.
    return salted_hmac(_HMAC_SALT, f"{contact}:{code}", algorithm="sha256").hexdigest()


def _stored_contact(wallet: Wallet, aidant: Aidant | None, channel: str) -> str:
    """The contact as recorded for this grant: the aidant's, or the beneficiary's own."""
    if aidant is not None:
        return aidant.contact
    beneficiary = wallet.beneficiary
    return beneficiary.email if channel == ContactChannel.EMAIL else beneficiary.phone.as_e164


def sign_in_code_request(*, contact: Contact) -> SignInCode | None:
    """Send a new sign-in code to `contact` if it may sign in to some wallet; None otherwise,
    and nothing is written. Run by a task (beneficiary_app.tasks), so that the request answers
    alike, and as fast, whether or not the contact is known.

    The code goes to the contact as recorded (the matched beneficiary's or aidant's), never
    to the text typed: a look-alike that matched would otherwise receive it."""
    issued = sign_in_code_issue(contact=contact)
    return issued[0] if issued else None


def sign_in_code_issue(*, contact: Contact) -> tuple[SignInCode, str] | None:
    """sign_in_code_request, which also returns the code's digits: for `manage.py demo`, which
    prints them for the person trying the app. Nothing else may show a code but its message."""
    grants = _grants(contact)
    if not grants:
        return None
    wallet, aidant = grants[0]
    recorded = _stored_contact(wallet, aidant, contact.channel)
    digits = f"{secrets.randbelow(10**6):06d}"
    now = timezone.now()
    with transaction.atomic():
        code = SignInCode.objects.create(
            contact=recorded,
            channel=contact.channel,
            digest=_digest(recorded, digits),
            created_at=now,
            expires_at=now + _code_lifetime(),
        )
        _sign_in_code_send(code=code, digits=digits, beneficiary=wallet.beneficiary)
    return code, digits


def _sign_in_code_send(*, code: SignInCode, digits: str, beneficiary: Beneficiary) -> None:
    """Put the code in the outbox for the one recorded contact it was made for.

    notify() tells a beneficiary on all of their channels; a sign-in code goes only to the
    contact that asked, which for an aidant is not the beneficiary's. The row is kept in the
    outbox of the (first) beneficiary whose wallet the contact opens, and sent by the same task
    as every message. It is rendered in the language of the person asking (the request's, which
    the task activates)."""
    folder = "notifications/sign_in_code"
    context = {"code": digits, "minutes": settings.APP_SIGN_IN_CODE_TTL_SECONDS // 60}
    if code.channel == ContactChannel.SMS:
        subject, body = "", sms_text(render_to_string(f"{folder}/sms.txt", context))
    else:
        subject = " ".join(render_to_string(f"{folder}/email_subject.txt", context).split())
        body = render_to_string(f"{folder}/email_body.txt", context).strip() + "\n"
    body = with_privacy_notice(channel=code.channel, recipient=code.contact, body=body)
    notification = Notification.objects.create(
        beneficiary=beneficiary,
        kind=Notification.Kind.SIGN_IN_CODE,
        channel=code.channel,
        recipient=code.contact,
        subject=subject,
        body=body,
        next_attempt_at=timezone.now(),
        dedupe_key=f"{Notification.Kind.SIGN_IN_CODE}:{code.pk}:{code.channel}",
    )
    transaction.on_commit(lambda: send_notification.delay(notification.pk), robust=True)


def sign_in_code_verify(*, contact: Contact, code: str) -> list[tuple[AppToken, str]]:
    """Check `code` against the contact's newest code and use it up; return a new token and
    its secret for each wallet the contact may see (see _grants), own wallet first. Any
    failure raises InvalidSignInCode; a wrong code counts against its code, which dies at
    MAX_WRONG_TRIES."""
    refused = True
    tokens: list[tuple[AppToken, str]] = []
    with transaction.atomic():
        row = (
            SignInCode.objects.select_for_update()
            .filter(contact=contact.value)
            .order_by("-created_at", "-pk")
            .first()
        )
        now = timezone.now()
        usable = (
            row is not None
            and row.used_at is None
            and row.expires_at > now
            and row.failed_attempts < MAX_WRONG_TRIES
        )
        if usable and _CODE.fullmatch(code):
            if hmac.compare_digest(row.digest, _digest(contact.value, code)):
                row.used_at = now
                row.save(update_fields=["used_at"])
                tokens = [
                    app_token_create(wallet=wallet, aidant=aidant)
                    for wallet, aidant in _grants(contact)
                ]
                refused = not tokens
            else:
                SignInCode.objects.filter(pk=row.pk).update(
                    failed_attempts=F("failed_attempts") + 1
                )
    # Raised after the commit, so that the wrong try stays counted.
    if refused:
        raise InvalidSignInCode()
    return tokens


# --- tokens -------------------------------------------------------------------------------


def app_token_idle_period() -> timedelta:
    return timedelta(days=settings.APP_TOKEN_IDLE_DAYS)


def app_token_expires_at(token: AppToken) -> datetime:
    """When the token stops working: after APP_TOKEN_IDLE_DAYS without use, and in any case
    APP_TOKEN_MAX_AGE_DAYS after it was made, so that a stolen token in steady use dies too."""
    return min(
        token.last_used_at + app_token_idle_period(),
        token.created_at + timedelta(days=settings.APP_TOKEN_MAX_AGE_DAYS),
    )


def app_token_create(*, wallet: Wallet, aidant: Aidant | None = None) -> tuple[AppToken, str]:
    """A new token for `wallet` (read-only with an aidant) and its secret, never stored nor
    shown again."""
    secret = f"app_{secrets.token_urlsafe(32)}"
    token = AppToken.objects.create(wallet=wallet, aidant=aidant, digest=AppToken.digest_of(secret))
    return token, secret


def app_token_touch(*, token: AppToken) -> AppToken:
    """Note that the token is in use, which keeps it from going idle."""
    now = timezone.now()
    if now - token.last_used_at > _LAST_USED_RESOLUTION:
        AppToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def app_token_revoke(*, token: AppToken) -> None:
    AppToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def app_token_revoke_everywhere(*, token: AppToken) -> int:
    """Sign out every device: for the beneficiary, every token of their wallet, aidants'
    included (they sign in again if still allowed); for an aidant, their own tokens for this
    wallet. Returns how many tokens were revoked."""
    tokens = AppToken.objects.filter(wallet_id=token.wallet_id, revoked_at__isnull=True)
    if token.aidant_id is not None:
        tokens = tokens.filter(aidant_id=token.aidant_id)
    return tokens.update(revoked_at=timezone.now())


# --- aidants ------------------------------------------------------------------------------


def aidant_authorize(
    *,
    wallet: Wallet,
    contact: Contact,
    name: str = "",
    registered_by=None,
    consent: str = "",
) -> tuple[Aidant, bool]:
    """Let the person at `contact` see `wallet`, read-only. Returns the authorisation and
    whether it is new: authorising the same contact again returns the first one. A funder's
    staff registering it for the person (`registered_by`) records how the person consented."""
    beneficiary = wallet.beneficiary
    if Beneficiary.objects.filter(_owner_filter(contact), pk=beneficiary.pk).exists():
        raise OwnContact()
    with transaction.atomic():
        # The wallet's lock makes the count and the uniqueness check hold under concurrency.
        wallet_lock(wallet.pk)
        active = Aidant.objects.filter(wallet=wallet, revoked_at__isnull=True)
        existing = active.filter(contact=contact.value).first()
        if existing is not None:
            return existing, False
        if active.count() >= MAX_AIDANTS:
            raise TooManyAidants(
                gettext(
                    "You already allow %(count)d people to see your wallet. "
                    "Remove one to add another."
                )
                % {"count": MAX_AIDANTS}
            )
        aidant = Aidant.objects.create(
            wallet=wallet,
            contact=contact.value,
            channel=contact.channel,
            name=name,
            registered_by=registered_by,
            consent=consent,
        )
        return aidant, True


def aidant_revoke(*, aidant: Aidant) -> Aidant:
    """Withdraw an aidant's access; their tokens stop working at once."""
    now = timezone.now()
    with transaction.atomic():
        Aidant.objects.filter(pk=aidant.pk, revoked_at__isnull=True).update(revoked_at=now)
        AppToken.objects.filter(aidant=aidant, revoked_at__isnull=True).update(revoked_at=now)
    aidant.refresh_from_db()
    return aidant


# --- the beneficiary and their cards ------------------------------------------------------


def beneficiary_language_set(*, beneficiary: Beneficiary, language: str) -> Beneficiary:
    if language not in Beneficiary.Language.values:
        raise DomainError(field="language")
    Beneficiary.objects.filter(pk=beneficiary.pk).update(preferred_language=language)
    beneficiary.preferred_language = language
    return beneficiary


# The status here is what the authorization engine reads; a card issued through Stripe gets
# each change pushed to Stripe after commit.
_CARD_TRANSITIONS = {
    # action: (statuses it changes, status it sets)
    "freeze": ({Card.Status.ACTIVE}, Card.Status.FROZEN),
    "unfreeze": ({Card.Status.FROZEN}, Card.Status.ACTIVE),
    "report_lost": (
        {Card.Status.ACTIVE, Card.Status.FROZEN, Card.Status.INACTIVE},
        Card.Status.LOST,
    ),
}


def _card_change(card: Card, action: str) -> Card:
    sources, target = _CARD_TRANSITIONS[action]
    with transaction.atomic():
        locked = Card.objects.select_for_update().get(pk=card.pk)
        if locked.status == target:  # a second tap changes nothing
            return locked
        if locked.status in (Card.Status.LOST, Card.Status.CANCELED):
            raise CardClosed(field=None)
        if locked.status not in sources:
            raise CardNotActive(field=None)
        locked.status = target
        locked.save(update_fields=["status"])
        card_status_push_on_commit(card=locked)
        return locked


def card_freeze(*, card: Card) -> Card:
    """Block the card for now: every card payment is refused until it is unfrozen."""
    return _card_change(card, "freeze")


def card_unfreeze(*, card: Card) -> Card:
    return _card_change(card, "unfreeze")


def card_report_lost(*, card: Card) -> Card:
    """Block the card for good: a lost card is never used again."""
    return _card_change(card, "report_lost")
