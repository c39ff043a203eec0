"""The outbox as the funder's staff see it: what each beneficiary was told, when, on which
channel, and whether it left. Read only: messages are written by the events they tell about."""

from django.contrib import admin
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from backoffice.admin.scoping import FunderScopedAdmin
from funders.tenancy import Role
from notifications.channels import mask_email, mask_phone
from wallet.models.notifications import Notification


@admin.register(Notification)
class NotificationAdmin(FunderScopedAdmin):
    # Every funder helping the person sees what they were told, except a message about another
    # funder's aid: that aid is the other funder's business, as the wallet's pockets are.
    funder_path = "beneficiary__enrolments__funder"
    view_role = Role.AGENT
    add_role = None
    change_role = None
    delete_role = None

    list_display = [
        "created_at",
        "beneficiary",
        "kind",
        "channel",
        "masked_recipient",
        "status",
        "delivery",
        "attempts",
    ]
    list_filter = ["status", "delivery", "channel", "kind"]
    list_select_related = ["beneficiary"]
    date_hierarchy = "created_at"
    search_fields = ["beneficiary__last_name", "beneficiary__first_name"]
    # The address or number in full stays out of the page, as out of the list.
    fields = [
        "beneficiary",
        "kind",
        "channel",
        "masked_recipient",
        "status",
        "skip_reason",
        "subject_shown",
        "body_shown",
        "attempts",
        "error",
        "next_attempt_at",
        "created_at",
        "sent_at",
        "delivery",
        "delivery_detail",
        "delivery_reported_at",
    ]
    readonly_fields = fields

    def scope_filter(self, funder_ids):
        return Q(beneficiary__enrolments__funder__in=funder_ids) & (
            Q(funder__isnull=True) | Q(funder__in=funder_ids)
        )

    # A sign-in code opens the person's wallet: nobody but them may read it, staff included.
    HIDDEN = _("(holds a one-time sign-in code: never shown)")

    @admin.display(description=_("subject"))
    def subject_shown(self, notification: Notification) -> str:
        if notification.kind == Notification.Kind.SIGN_IN_CODE:
            return self.HIDDEN
        return notification.subject

    @admin.display(description=_("message"))
    def body_shown(self, notification: Notification) -> str:
        if notification.kind == Notification.Kind.SIGN_IN_CODE:
            return self.HIDDEN
        return notification.body

    @admin.display(description=_("sent to"))
    def masked_recipient(self, notification: Notification) -> str:
        if notification.channel == Notification.Channel.PUSH:
            return _("the app, on each device where it is turned on")
        if not notification.recipient:
            return "—"
        if notification.channel == Notification.Channel.SMS:
            return mask_phone(notification.recipient)
        return mask_email(notification.recipient)
