from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from funders.admin.scoping import FunderScopedAdmin
from funders.models import Program
from funders.services import program_create


@admin.register(Program)
class ProgramAdmin(FunderScopedAdmin, SimpleHistoryAdmin):
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
