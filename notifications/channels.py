"""How a message leaves: email through Django's EMAIL_BACKEND, SMS through SMS_BACKEND, app
notifications through web push (notifications.push).

SMS_BACKEND is the dotted path of a class whose instances have `send(phone, text)`, as Django's
email backends: a provider plugs in by writing one, which raises on a failure so that the
message is tried again, and returns the provider's id of the message (or None), by which its
delivery reports find it. `phone` is in E.164 form ("+33612345678"). One provider ships:
Brevo (notifications.brevo.BrevoSMSBackend). Email goes through any Django backend; with
django-anymail's, the provider's id is kept too."""

import copy
import logging
import re
from email.utils import parseaddr
from typing import Protocol

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.console import EmailBackend as DjangoConsoleEmailBackend
from django.utils.module_loading import import_string

from notifications.push import push_deliver
from wallet.models.notifications import Notification

logger = logging.getLogger(__name__)

# Characters outside the GSM 03.38 alphabet turn a whole SMS into UCS-2, which halves its
# length (70 characters instead of 160). French formatting brings some that have a GSM twin.
_GSM_TWINS = str.maketrans(
    {
        "\u00a0": " ",  # no-break space, before "€" in French
        "\u202f": " ",  # narrow no-break space, between thousands in French
        "\u2019": "'",
        "\u2018": "'",
        "\u201c": '"',
        "\u201d": '"',
        "\u2013": "-",
        "\u2014": "-",
        "\u2026": "...",
        "\u00ab": '"',
        "\u00bb": '"',
    }
)
_SPACES = re.compile(r"\s+")
# Six digits or more, maybe in groups as people read them: a sign-in code (6 digits) or a
# payment code ("1234 567 890"). An amount or a date has fewer digits in a row.
_CODE = re.compile(r"(?<!\d)\d(?:[ \u00a0\u202f]?\d){5,}(?!\d)")


# GSM 03.38's basic alphabet and its extension (each of those counts twice): a text made of
# these alone goes out in 160-character parts; any other character makes it UCS-2.
_GSM = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)


def sms_is_gsm(text: str) -> bool:
    return all(char in _GSM for char in text)


class SMSBackend(Protocol):
    # sender: the funder's sender name, None for the platform's (settings.SMS_SENDER).
    def send(self, phone: str, text: str, sender: str | None = None) -> str | None: ...


def mask_codes(text: str) -> str:
    """`text` with every code in it replaced by dots ("Your sign-in code: ••••••"): what a
    console backend may write to a log, which is kept and read by more people than the
    messages. Masked in development too: logs travel (pasted in an issue, shipped to a log
    service). The demo shows the person trying it their code itself (demo/)."""
    return _CODE.sub("••••••", text)


class ConsoleSMSBackend:
    """Writes each SMS to the log instead of sending it: the default in development. The
    number and the codes are masked, as logs are kept and read by more people than the
    messages."""

    def send(self, phone: str, text: str, sender: str | None = None) -> None:
        logger.info(
            "SMS to %s (from %s): %s",
            mask_phone(phone),
            sender or settings.SMS_SENDER,
            mask_codes(text),
        )
        return None


class ConsoleEmailBackend(DjangoConsoleEmailBackend):
    """Django's console backend, with the codes of the subject and the text masked: the
    default in development."""

    def write_message(self, message: EmailMessage) -> None:
        masked = copy.copy(message)
        masked.subject = mask_codes(message.subject)
        masked.body = mask_codes(message.body)
        if hasattr(message, "alternatives"):  # EmailMultiAlternatives: an HTML version
            masked.alternatives = [
                alternative._replace(content=mask_codes(alternative.content))
                for alternative in message.alternatives
            ]
        super().write_message(masked)


class OutboxSMSBackend:
    """Sends nothing: the outbox row is the record (tests, the demo)."""

    def send(self, phone: str, text: str, sender: str | None = None) -> None:
        return None


def sms_backend() -> SMSBackend:
    return import_string(settings.SMS_BACKEND)()


def sms_text(text: str) -> str:
    """One line of GSM-friendly text: what an SMS template renders, made cheap to send."""
    return _SPACES.sub(" ", text.translate(_GSM_TWINS)).strip()


class Carriers:
    """The email connection and the SMS client that the messages of one batch share, each
    opened at its first message and closed with the batch (`with Carriers() as carriers:`): an
    SMTP session, or an email or SMS provider's HTTPS connection, is set up once for the
    batch instead of once a message. One that failed is dropped, so that the next message
    starts afresh rather than on a connection the failure may have broken. App notifications
    go each to its own push service (push.py's checked session per request): nothing shared."""

    def __init__(self) -> None:
        self._email: BaseEmailBackend | None = None
        self._sms: SMSBackend | None = None

    def __enter__(self) -> "Carriers":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.drop(Notification.Channel.EMAIL)
        self.drop(Notification.Channel.SMS)

    def email(self) -> BaseEmailBackend:
        if self._email is None:
            self._email = get_connection()
            self._email.open()
        return self._email

    def sms(self) -> SMSBackend:
        if self._sms is None:
            self._sms = sms_backend()
        return self._sms

    def drop(self, channel: str) -> None:
        if channel == Notification.Channel.EMAIL and self._email is not None:
            email, self._email = self._email, None
            email.close()
        elif channel == Notification.Channel.SMS and self._sms is not None:
            sms, self._sms = self._sms, None
            # The SMS_BACKEND protocol asks only for send(): a client may hold nothing.
            close = getattr(sms, "close", None)
            if close is not None:
                close()


def deliver(notification: Notification, carriers: Carriers | None = None) -> str | None:
    """Send one message and return the provider's id of it, when the provider gives one;
    raises whatever the email, SMS or push backend raises on a failure, and Undeliverable when
    nothing could ever carry it. With `carriers`, the message goes on the batch's connection."""
    channel = notification.channel
    if channel in (Notification.Channel.EMAIL, Notification.Channel.SMS):
        if carriers is None:
            with Carriers() as own:
                return _carried(notification, own)
        try:
            return _carried(notification, carriers)
        except Exception:
            carriers.drop(channel)
            raise
    if channel == Notification.Channel.PUSH:
        push_deliver(notification=notification)
        return None
    raise ValueError(f"unknown notification channel: {channel!r}")


def _carried(notification: Notification, carriers: Carriers) -> str | None:
    if notification.channel == Notification.Channel.SMS:
        return carriers.sms().send(
            notification.recipient, notification.body, sender=sms_sender(notification)
        )
    message = EmailMessage(
        notification.subject,
        notification.body,
        sender(notification),
        [notification.recipient],
        connection=carriers.email(),
    )
    message.send()
    # django-anymail's backends say what the provider called the message.
    status = getattr(message, "anymail_status", None)
    return status.message_id if status is not None else None


def sender(notification: Notification) -> str:
    """The From of an email: the funder's name, whose aid the message is about, over the
    platform's address (people open a message from "Département de l'Isère" rather than from
    a platform they have never heard of); DEFAULT_FROM_EMAIL as it is for the others."""
    if notification.funder_id is None:
        return settings.DEFAULT_FROM_EMAIL
    _, address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    # Quoted, not encoded: Django encodes the name (accents) when it writes the header.
    name = notification.funder.name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{name}" <{address}>'


def sms_sender(notification: Notification) -> str | None:
    """The sender of an SMS: the funder's name for SMS, whose aid the message is about, as for
    an email's From; None (the platform's) for the others or a funder without one."""
    if notification.funder_id is None:
        return None
    return notification.funder.sms_sender or None


def mask_phone(phone: str) -> str:
    """The last two digits only ("••••••••78"): enough to tell two numbers apart, not to call
    one."""
    digits = [char for char in phone if char.isdigit()]
    return "••••••••" + "".join(digits[-2:])


def mask_email(address: str) -> str:
    """The first letter and the domain only ("c•••@example.org")."""
    local, _, domain = address.rpartition("@")
    if not local:
        return "•••"
    return f"{local[0]}•••@{domain}"
