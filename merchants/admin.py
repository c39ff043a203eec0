from django.contrib import admin

from merchants.models import ApiKey, Merchant


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

    def has_add_permission(self, request):
        return False
