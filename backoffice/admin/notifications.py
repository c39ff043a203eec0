"""The outbox as the funder's staff see it: what each beneficiary was told, when, on which
channel, and whether it left. Read only: messages are written by the events they tell about.
The payments' messages still to write, and those that failed to be written, are the
operators'."""

from django.contrib import admin, messages
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from backoffice.admin.scoping import FunderScopedAdmin
from funders.tenancy import Role, is_operator
from notifications.channels import mask_email, mask_phone
from notifications.services import decision_notices_retry
from wallet.models.notifications import DecisionNotice, Notification


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


class DecisionNoticeStateFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("pending", _("Pending")), ("failed", _("Failed"))]

    def queryset(self, request, queryset):
        if self.value() == "pending":
            return queryset.filter(failed_at__isnull=True)
        if self.value() == "failed":
            return queryset.filter(failed_at__isnull=False)
        return queryset


@admin.register(DecisionNotice)
class DecisionNoticeAdmin(FunderScopedAdmin):
    """The payments whose message is still to be written (notifications.services'
    decision_notices_drain), as failed webhook deliveries are shown: a notice that failed every
    attempt stays here with its error until an operator has it tried again, once its cause is
    mended. Operators only: the platform's work, not a funder's."""

    operators_only = True
    add_role = change_role = delete_role = None

    # The error first: what an operator opens this page for, visible without scrolling sideways.
    list_display = ["decision", "error", "attempts", "failed_at", "next_attempt_at", "created_at"]
    list_filter = [DecisionNoticeStateFilter]
    date_hierarchy = "created_at"
    fields = readonly_fields = list_display
    actions = ["retry"]

    def has_retry_permission(self, request):
        return is_operator(request.user)

    @admin.action(description=_("Try again now"), permissions=["retry"])
    def retry(self, request, queryset):
        count = decision_notices_retry(notices=list(queryset))
        message = ngettext(
            "%(count)d payment message will be written again.",
            "%(count)d payment messages will be written again.",
            count,
        ) % {"count": count}
        self.message_user(request, message, messages.SUCCESS)
