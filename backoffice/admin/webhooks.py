"""Admin of webhooks out: endpoints are set up here; events, deliveries and their attempts are
shown, never edited. A delivery can be sent again ("resend")."""

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from merchants.events import EventType
from merchants.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from merchants.webhooks import webhook_delivery_resend, webhook_endpoint_create


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyInline(admin.TabularInline):
    """Rows of what happened, shown under their record: never added, changed or deleted there,
    every field shown read-only."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    enabled_events = forms.MultipleChoiceField(
        label=_("event types"),
        choices=EventType.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None selected: every event type."),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["merchant", "url", "enabled_events", "is_active"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "merchant", "is_active", "livemode", "created_at"]
    list_filter = ["is_active", "livemode"]
    search_fields = ["url", "merchant__trade_name"]
    autocomplete_fields = ["merchant"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["merchant", "url", "enabled_events", "is_active"]
        return ["merchant", "url", "enabled_events", "is_active", "masked_secret", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["merchant", "masked_secret", "created_at"]

    @admin.display(description=_("signing secret"))
    def masked_secret(self, endpoint):
        return endpoint.masked_secret

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        created = webhook_endpoint_create(
            merchant=obj.merchant,
            url=obj.url,
            enabled_events=obj.enabled_events,
            is_active=obj.is_active,
        )
        obj.pk = created.pk
        obj.secret = created.secret
        obj.created_at = created.created_at
        # The only time the secret is shown: the merchant needs it to check the signatures.
        self.message_user(
            request,
            _(
                "Signing secret of this endpoint, shown only now: %(secret)s. Give it to the "
                "merchant to check the Aidwallet-Signature header of each webhook."
            )
            % {"secret": created.secret},
            messages.WARNING,
        )


class WebhookAttemptInline(ReadOnlyInline):
    model = WebhookAttempt
    fields = [
        "number",
        "started_at",
        "duration_ms",
        "status_code",
        "error",
        "response_excerpt",
    ]


class WebhookDeliveryInline(ReadOnlyInline):
    model = WebhookDelivery
    fields = ["endpoint", "status", "attempts", "last_status_code", "next_attempt_at"]
    show_change_link = True


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["reference", "type", "merchant", "livemode", "created_at"]
    list_filter = ["type", "livemode"]
    search_fields = ["reference", "merchant__trade_name"]
    fields = ["reference", "type", "merchant", "created_at", "payload"]
    readonly_fields = fields
    inlines = [WebhookDeliveryInline]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = [
        "event",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
    ]
    list_filter = ["status"]
    search_fields = ["event__reference", "endpoint__url"]
    list_select_related = ["event", "endpoint"]
    fields = [
        "event",
        "endpoint",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "delivered_at",
        "created_at",
    ]
    readonly_fields = fields
    inlines = [WebhookAttemptInline]
    actions = ["resend"]

    def has_resend_permission(self, request):
        return request.user.has_perm("merchants.change_webhookdelivery")

    @admin.action(description=_("Send again now"), permissions=["resend"])
    def resend(self, request, queryset):
        count = 0
        for delivery in queryset:
            webhook_delivery_resend(delivery=delivery)
            count += 1
        message = ngettext("%(count)d delivery queued.", "%(count)d deliveries queued.", count) % {
            "count": count
        }
        self.message_user(request, message, messages.SUCCESS)
