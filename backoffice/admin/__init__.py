"""The back office: funders' staff and the platform's operators work here. One module per area;
importing it registers its admin pages."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from backoffice.admin import (  # noqa: F401
    allocations,
    beneficiaries,
    campaigns,
    closing,
    imports,
    merchants,
    nonuse,
    notifications,
    profiles,
    programs,
    reports,
    retention,
    settlement,
    staff,
    webhooks,
)

admin.site.site_header = _("Aid wallet: funders' back office")
admin.site.site_title = _("Aid wallet")
admin.site.index_title = _("Back office")
# The home shows each funder's key figures and the programs needing attention above the menu.
admin.site.index_template = "admin/backoffice/index.html"
