"""The beneficiary's information notice (GDPR articles 13 and 14), linked from the first
message each email address or phone number receives: the person learns who holds what about
them, why, for how long and what they may ask, before anything else (the notice itself is a page
of the app, beneficiary_app.web.views.privacy_notice)."""

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _

from notifications.channels import sms_text
from wallet.models.notifications import Notification

Channel = Notification.Channel


def privacy_notice_url() -> str:
    return f"{settings.PUBLIC_URL.rstrip('/')}{reverse('mobile:privacy')}"


def with_privacy_notice(*, channel: str, recipient: str, body: str) -> str:
    """`body`, with the notice's address added when nothing was ever written to `recipient` on
    `channel` (its first message). In the active language: call it where the message is
    rendered."""
    if channel not in (Channel.EMAIL, Channel.SMS) or not recipient:
        return body
    if Notification.objects.filter(channel=channel, recipient=recipient).exists():
        return body
    url = privacy_notice_url()
    if channel == Channel.SMS:
        line = _("Your data and your rights: %(url)s") % {"url": url}
        return sms_text(f"{body} {line}")
    line = _("How we use your personal data, and your rights: %(url)s") % {"url": url}
    return f"{body.rstrip()}\n\n{line}\n"
