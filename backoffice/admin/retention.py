"""The retention schedule's audit trail (gdpr.retention), for the platform's operators and
their data protection officer: read only."""

from django.contrib import admin

from funders.tenancy import is_operator
from gdpr.models import RetentionPurge


@admin.register(RetentionPurge)
class RetentionPurgeAdmin(admin.ModelAdmin):
    list_display = ["ran_at", "rule", "count", "cutoff"]
    list_filter = ["rule"]
    date_hierarchy = "ran_at"

    def has_view_permission(self, request, obj=None):
        return is_operator(request.user)

    def has_module_permission(self, request):
        return is_operator(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
