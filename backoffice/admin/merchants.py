from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from merchants.models import ApiKey, Merchant
from merchants.services import (
    ApiKeyLimitReached,
    api_key_create,
    merchant_approve,
    merchant_create,
    merchant_suspend,
    merchant_unflag,
)


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = ["name", "mode", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ["trade_name", "city", "postcode", "mcc", "status", "flagged_at"]
    list_filter = ["status", ("flagged_at", admin.EmptyFieldListFilter), "mcc"]
    search_fields = ["trade_name", "legal_name", "siret", "city"]
    readonly_fields = ["status", "approved_at", "flagged_at", "flag_reason"]
    inlines = [ApiKeyInline]
    actions = ["approve", "suspend", "create_api_key", "unflag"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        # A new merchant needs its payable account: the service creates both.
        fields = {name: form.cleaned_data[name] for name in form.cleaned_data}
        created = merchant_create(**fields)
        obj.pk, obj.payable_account = created.pk, created.payable_account

    @admin.action(description=_("Approve: allow them to take aid payments"))
    def approve(self, request, queryset):
        for merchant in queryset:
            merchant_approve(merchant=merchant)
        count = queryset.count()
        self.message_user(
            request, ngettext("%d merchant approved.", "%d merchants approved.", count) % count
        )

    @admin.action(description=_("Suspend: refuse their payments from now on"))
    def suspend(self, request, queryset):
        for merchant in queryset:
            merchant_suspend(merchant=merchant)
        count = queryset.count()
        self.message_user(
            request, ngettext("%d merchant suspended.", "%d merchants suspended.", count) % count
        )

    @admin.action(description=_("Create an API key (shown once)"))
    def create_api_key(self, request, queryset):
        # The keys are shown on this page only, never in a message: messages travel in a cookie
        # (CookieStorage), which would carry the secret to the browser's storage and back.
        created, refused = [], []
        for merchant in queryset:
            try:
                _key, secret = api_key_create(
                    merchant=merchant, name=str(_("Created in the admin"))
                )
            except ApiKeyLimitReached:
                refused.append(merchant)
            else:
                created.append((merchant, secret))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("API keys created"),
            "created": created,
            "refused": refused,
        }
        response = TemplateResponse(
            request, "admin/merchants/merchant/api_keys_created.html", context
        )
        add_never_cache_headers(response)  # no-store: no cache keeps the page and its keys
        return response

    @admin.action(description=_("Clear the review flag (after review)"))
    def unflag(self, request, queryset):
        for merchant in queryset.filter(flagged_at__isnull=False):
            merchant_unflag(merchant=merchant)
