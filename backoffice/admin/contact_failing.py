"""On the person's file: a warning for each contact that messages no longer reach
(notifications.selectors.contact_failing), so that the agent asks for another one."""

from django.contrib import messages
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from notifications.selectors import ContactFailing, contact_failing
from wallet.models import Beneficiary
from wallet.models.notifications import Notification

_WHY = {
    Notification.Delivery.BOUNCED: gettext_lazy(
        "the provider says it does not exist or cannot receive"
    ),
    Notification.Delivery.COMPLAINED: gettext_lazy("the person reported our messages as unwanted"),
    Notification.Delivery.OPTED_OUT: gettext_lazy("the person asked for no more messages (STOP)"),
    "failed": gettext_lazy("no attempt to send to it succeeded"),
}


def contact_failing_text(failing: ContactFailing) -> str:
    channel = Notification.Channel(failing.channel).label
    return _("%(channel)s %(recipient)s fails since %(date)s: %(why)s.") % {
        "channel": channel,
        "recipient": failing.recipient,
        "date": date_format(failing.since, "SHORT_DATE_FORMAT") if failing.since else "?",
        "why": _WHY[failing.why],
    }


def contact_failing_warn(request, person: Beneficiary | None) -> None:
    if person is None:
        return
    for failing in contact_failing(person):
        messages.warning(request, contact_failing_text(failing))
