"""SMS through Brevo (formerly Sendinblue), a French provider: its transactional SMS API out,
its SMS webhook in.

Out: POST {BREVO_API_URL}transactionalSMS/sms with the account's key in the `api-key` header and
{"sender", "recipient", "content", "type": "transactional", "webUrl"}; Brevo answers 201 with the
message's `messageId`, which the outbox keeps. `webUrl` (SMS_STATUS_WEBHOOK_URL) is where Brevo
posts that message's events.

In (POST /hooks/sms/brevo, notifications.views): Brevo's transactional SMS events, one JSON object
or a list of them (batched webhooks): {"messageId", "to", "msg_status", "reply" for a reply,
"description", "ts_event"...}. `msg_status` is sent, accepted, delivered, soft_bounce,
hard_bounce, rejected, blacklisted, unsubscribe(d), replied or reply. A delivery report updates
the message's delivery state; a reply is an inbound SMS (SOLDE, STOP, START: see
notifications.inbound); an unsubscribe records the number's opt-out."""

import logging
from dataclasses import dataclass

import requests
from django.conf import settings

from notifications.channels import sms_is_gsm

logger = logging.getLogger(__name__)


class BrevoError(Exception):
    """Brevo refused or could not take the message: the outbox tries again later."""


class BrevoSMSBackend:
    """One HTTPS connection to Brevo for the messages this client sends (a batch's: see
    channels.Carriers), kept open between them; closed with close()."""

    def __init__(self) -> None:
        self._session = requests.Session()

    def close(self) -> None:
        self._session.close()

    def send(self, phone: str, text: str, sender: str | None = None) -> str | None:
        body = {
            "sender": sender or settings.SMS_SENDER,
            # Brevo writes numbers with their country code and no "+".
            "recipient": phone.removeprefix("+"),
            "content": text,
            "type": "transactional",
            "unicodeEnabled": not sms_is_gsm(text),
        }
        if settings.SMS_STATUS_WEBHOOK_URL:
            body["webUrl"] = settings.SMS_STATUS_WEBHOOK_URL
        try:
            response = self._session.post(
                f"{settings.BREVO_API_URL.rstrip('/')}/transactionalSMS/sms",
                json=body,
                headers={"api-key": settings.BREVO_API_KEY, "accept": "application/json"},
                timeout=settings.SMS_TIMEOUT,
            )
        except requests.RequestException as error:
            raise BrevoError(f"Brevo unreachable: {type(error).__name__}") from error
        if response.status_code not in (200, 201):
            # Brevo's error is {"code", "message"}; the message may quote the number, which
            # the outbox masks before it keeps or logs it.
            raise BrevoError(f"Brevo answered {response.status_code}: {response.text[:300]}")
        try:
            message_id = response.json().get("messageId")
        except (ValueError, AttributeError) as error:
            raise BrevoError("Brevo's answer is not the expected JSON") from error
        return str(message_id) if message_id is not None else None


@dataclass(frozen=True)
class SmsEvent:
    """One of Brevo's SMS events, read from its webhook."""

    status: str
    message_id: str
    phone: str
    reply: str
    detail: str
    event_id: str


def events_parse(data) -> list[SmsEvent] | None:
    """The events of one webhook call (an object, or a list of them when batched); None when
    the body is not Brevo's shape."""
    items = data if isinstance(data, list) else [data]
    events = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("msg_status"), str):
            return None
        values = {
            key: item.get(key)
            for key in ("messageId", "to", "reply", "description", "ts_event", "id")
        }
        if not all(value is None or isinstance(value, str | int) for value in values.values()):
            return None
        events.append(
            SmsEvent(
                status=item["msg_status"].strip().lower(),
                message_id=str(values["messageId"] or ""),
                phone=str(values["to"] or ""),
                reply=str(values["reply"] or ""),
                detail=str(values["description"] or "")[:200],
                event_id=f"brevo:{values['messageId'] or ''}:{values['ts_event'] or ''}",
            )
        )
    return events
