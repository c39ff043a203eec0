from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from merchants.models import ApiKey, Merchant
from merchants.services import api_key_create, merchant_approve, merchant_create, merchant_suspend


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
    list_display = ["trade_name", "city", "postcode", "mcc", "status"]
    list_filter = ["status", "mcc"]
    search_fields = ["trade_name", "legal_name", "siret", "city"]
    readonly_fields = ["status", "approved_at"]
    inlines = [ApiKeyInline]
    actions = ["approve", "suspend", "create_api_key"]

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
        for merchant in queryset:
            _key, secret = api_key_create(merchant=merchant, name=str(_("Created in the admin")))
            self.message_user(
                request,
                _("API key for %(merchant)s, shown only now: %(secret)s")
                % {"merchant": merchant, "secret": secret},
                messages.WARNING,
            )


from merchants import admin_settlement, admin_webhooks  # noqa: E402, F401
