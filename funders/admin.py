from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from funders.models import Allocation, Funder, Membership, Program
from funders.services import program_create


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Funder)
class FunderAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "siret"]
    search_fields = ["name", "siret"]
    inlines = [MembershipInline]


@admin.register(Program)
class ProgramAdmin(SimpleHistoryAdmin):
    list_display = ["name", "funder", "currency", "is_active"]
    list_filter = ["funder", "is_active"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        # A new program needs its float account: the service creates both.
        created = program_create(
            funder=obj.funder,
            name=obj.name,
            currency=obj.currency,
            purpose=obj.purpose,
            rules=obj.rules,
        )
        obj.pk = created.pk
        obj.float_account = created.float_account


@admin.register(Allocation)
class AllocationAdmin(SimpleHistoryAdmin):
    list_display = ["beneficiary", "program", "amount", "valid_from", "valid_until", "status"]
    list_filter = ["status", "program"]
    search_fields = ["beneficiary__last_name", "beneficiary__email"]
    readonly_fields = [field.name for field in Allocation._meta.fields]

    def has_add_permission(self, request):
        return False
