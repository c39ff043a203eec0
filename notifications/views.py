"""The SMS webhooks: POST /hooks/sms/brevo for Brevo's events (delivery reports, replies,
opt-outs), and the provider-neutral POST /hooks/sms/inbound, called by any SMS provider for each
SMS sent to the platform's number.

Provider-neutral: a form or a JSON object with `from` (the sender's number), `text` and,
optionally, `id` (the provider's message id, which makes a retried delivery answered once).
Authenticated by the shared secret SMS_INBOUND_SECRET in the X-SMS-Webhook-Secret header: 403
without it, 404 while no secret is set (the webhook is off). A well-formed request gets 200,
whatever is answered, or not, to the sender; a malformed one 400 with a code."""

import hmac
import json

from anymail import urls as anymail_urls
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from notifications import brevo
from notifications.inbound import brevo_events_receive, sms_inbound_receive

MAX_TEXT = 1_600  # ten concatenated SMS: anything longer is not an SMS
MAX_FIELD = 100


def _error(code: str, message: str, status: int, field: str | None = None) -> JsonResponse:
    return JsonResponse(
        {"error": {"code": code, "message": message, "field": field}}, status=status
    )


def _is_text(value) -> bool:
    """A string that can be stored: no NUL, which PostgreSQL refuses, and no lone surrogate,
    which JSON allows ("\\ud800") but UTF-8 cannot encode."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _fields(request: HttpRequest) -> dict | None:
    if request.content_type == "application/json":
        try:
            data = json.loads(request.body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return None
        return data if isinstance(data, dict) else None
    return request.POST.dict()


@csrf_exempt
def sms_inbound(request: HttpRequest) -> JsonResponse:
    refused = _sms_hook_refused(request)
    if refused is not None:
        return refused
    data = _fields(request)
    if data is None:
        return _error("malformed_request", _("Send a form or a JSON object."), 400)
    sender, text, message_id = data.get("from"), data.get("text"), data.get("id", "")
    if not _is_text(sender) or not sender.strip() or len(sender) > MAX_FIELD:
        return _error("invalid_request", _("The sender's number is missing."), 400, "from")
    if not _is_text(text) or len(text) > MAX_TEXT:
        return _error("invalid_request", _("The text of the message is missing."), 400, "text")
    if (
        not (isinstance(message_id, int) or _is_text(message_id))
        or len(str(message_id)) > MAX_FIELD
    ):
        return _error("invalid_request", _("The message id is not valid."), 400, "id")
    sms_inbound_receive(sender=sender, text=text, message_id=str(message_id))
    return JsonResponse({"status": "received"})


def _sms_hook_refused(request: HttpRequest) -> JsonResponse | None:
    """The answer to a request the SMS hooks do not take, None for one they do: none is taken
    while SMS_INBOUND_SECRET is not set (404), nor another method than POST, nor one without
    the secret."""
    secret = settings.SMS_INBOUND_SECRET
    if not secret:
        return _error("not_found", _("No such resource."), 404)
    if request.method != "POST":
        return _error("method_not_allowed", _("Use POST."), 405)
    if not _webhook_authorized(request, secret):
        return _error("authentication_failed", _("The webhook secret is missing or wrong."), 403)
    return None


def _webhook_authorized(request: HttpRequest, secret: str) -> bool:
    """The shared secret, as Brevo's webhooks send it (`Authorization: Bearer`, set when the
    webhook is created with a bearer token) or as the provider-neutral hook does."""
    given = request.headers.get("X-SMS-Webhook-Secret", "")
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        given = authorization.removeprefix("Bearer ").strip()
    return hmac.compare_digest(given.encode(), secret.encode())


@csrf_exempt
def sms_brevo(request: HttpRequest) -> JsonResponse:
    """POST /hooks/sms/brevo: Brevo's SMS events (notifications.brevo). Authenticated by
    SMS_INBOUND_SECRET as a bearer token; 404 while none is set."""
    refused = _sms_hook_refused(request)
    if refused is not None:
        return refused
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        data = None
    events = brevo.events_parse(data) if data is not None else None
    if events is None or not all(
        _is_text(value) and len(value) <= MAX_TEXT
        for event in events
        for value in (event.message_id, event.phone, event.reply, event.detail)
    ):
        return _error("malformed_request", _("Send Brevo's SMS events as JSON."), 400)
    brevo_events_receive(events)
    return JsonResponse({"status": "received"})


_TRACKING_VIEWS = {
    pattern.name.removesuffix("_tracking_webhook"): pattern.callback
    for pattern in anymail_urls.urlpatterns
    if pattern.name and pattern.name.endswith("_tracking_webhook")
}


@csrf_exempt
def email_tracking(request: HttpRequest, provider: str):
    """POST /hooks/email/<provider>/tracking/: django-anymail's tracking webhook of that
    provider (brevo, mailjet, sendgrid...), whose events reach
    notifications.receivers.on_email_tracking. Only with ANYMAIL_WEBHOOK_SECRET set: anymail
    would otherwise take events from anyone, and anyone could mark contacts failing."""
    view = _TRACKING_VIEWS.get(provider)
    if view is None or not settings.ANYMAIL.get("WEBHOOK_SECRET"):
        return _error("not_found", _("No such resource."), 404)
    return view(request)
