from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from funders.admin.scoping import FunderScopedAdmin
from funders.models import Allocation


@admin.register(Allocation)
class AllocationAdmin(FunderScopedAdmin, SimpleHistoryAdmin):
    funder_path = "program__funder"
    list_display = ["beneficiary", "program", "amount", "valid_from", "valid_until", "status"]
    list_filter = ["status", "program"]
    search_fields = ["beneficiary__last_name", "beneficiary__email"]
    readonly_fields = [field.name for field in Allocation._meta.fields]
    add_role = None
