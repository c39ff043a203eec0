"""Read-mostly admin for wallets and the ledger: money only moves through the services, so the
ledger's records are shown, never edited here."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from wallet.models import Account, Beneficiary, Card, Decision, Pocket, Transfer, Wallet


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class PocketInline(admin.TabularInline):
    model = Pocket
    fields = ["allocation", "available", "held", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description=_("available (cents)"))
    def available(self, pocket):
        return pocket.account.available

    @admin.display(description=_("held (cents)"))
    def held(self, pocket):
        return pocket.account.pending


@admin.register(Beneficiary)
class BeneficiaryAdmin(admin.ModelAdmin):
    list_display = ["last_name", "first_name", "postcode", "email", "phone"]
    search_fields = ["last_name", "first_name", "email", "postcode"]


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin):
    list_display = ["beneficiary", "is_frozen", "created_at"]
    list_filter = ["is_frozen"]
    search_fields = ["beneficiary__last_name", "beneficiary__email"]
    readonly_fields = ["beneficiary", "is_frozen", "frozen_reason", "created_at"]
    inlines = [PocketInline]

    def has_add_permission(self, request):
        return False


@admin.register(Card)
class CardAdmin(ReadOnlyAdmin):
    list_display = ["reference", "wallet", "kind", "status", "last4"]
    list_filter = ["status", "kind"]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = [
        "reference",
        "decided_at",
        "channel",
        "merchant",
        "amount",
        "approved_amount",
        "status",
        "reason",
    ]
    list_filter = ["status", "channel", "reason"]
    search_fields = ["reference"]


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["code", "name", "kind", "currency", "guarded", "balance", "pending"]
    list_filter = ["kind", "currency"]
    search_fields = ["code", "name"]


@admin.register(Transfer)
class TransferAdmin(ReadOnlyAdmin):
    list_display = ["pk", "created_at", "kind", "amount", "currency", "is_pending"]
    list_filter = ["kind", "is_pending"]
