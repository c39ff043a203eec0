"""The funder back office. One module per area; each registers its admin pages."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from funders.admin import allocations, campaigns, imports, profiles, programs, reports, staff  # noqa: F401

admin.site.site_header = _("Aid wallet: funders' back office")
admin.site.site_title = _("Aid wallet")
admin.site.index_title = _("Back office")
