from django.contrib import admin

from funders.admin.scoping import FunderScopedAdmin
from funders.models import Funder, Membership


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0


@admin.register(Funder)
class FunderAdmin(FunderScopedAdmin):
    funder_path = "pk"
    list_display = ["name", "kind", "siret"]
    search_fields = ["name", "siret"]
    inlines = [MembershipInline]
