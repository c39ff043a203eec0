"""Allocating from a file: upload, the check's result row by row, confirmation, progress."""

from datetime import date

from django import forms
from django.contrib import admin
from django.http import Http404
from django.utils.translation import gettext_lazy as _

from backoffice.admin.spreadsheet_imports import (
    SpreadsheetImportAdmin,
    SpreadsheetUploadForm,
    column_rows,
)
from core.money import format_money
from funders.imports import (
    COLUMNS,
    allocation_import_confirm,
    allocation_import_create,
    allocation_import_recheck,
    error_message,
    template_dataset,
)
from funders.models import AllocationImport, Program
from funders.tenancy import Role, funders_of

Status = AllocationImport.Status
RESULTS = {
    "new": _("New beneficiary"),
    "existing": _("Existing beneficiary"),
    "already_allocated": _("Already allocated"),
    "already_holds": _("Skipped: already holds this aid"),
    "invalid": _("Errors"),
}


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


class UploadForm(SpreadsheetUploadForm):
    file_help = _("A .csv or .xlsx file, one row per allocation, at most 5 MB.")

    program = forms.ModelChoiceField(label=_("program"), queryset=Program.objects.none())
    grant_to_holders = forms.BooleanField(
        label=_("Grant again to people who already hold this aid"),
        required=False,
        help_text=_(
            "Left unticked, the check flags them and they are skipped: no one receives the same "
            "aid twice by mistake."
        ),
    )

    def __init__(self, *args, programs, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["program"].queryset = programs


@admin.register(AllocationImport)
class AllocationImportAdmin(SpreadsheetImportAdmin):
    funder_path = "program__funder"
    # Imports move money: managers only, agents do not see them.
    view_role = Role.MANAGER
    add_role = Role.MANAGER
    template_dir = "admin/funders/allocationimport"
    object_name = "allocation_import"
    upload_title = _("Allocate aid from a file")
    confirm_service = staticmethod(allocation_import_confirm)
    recheck_service = staticmethod(allocation_import_recheck)
    list_display = [
        "filename",
        "program",
        "status",
        "total_rows",
        "total",
        "created_by",
        "created_at",
        "applied_at",
    ]
    list_filter = ["status", "program"]
    list_select_related = ["program", "created_by"]
    search_fields = ["filename"]

    @admin.display(description=_("total"), ordering="total_amount")
    def total(self, allocation_import):
        return format_money(allocation_import.total_amount, allocation_import.program.currency)

    def _programs(self, request):
        return Program.objects.filter(
            funder__in=funders_of(request.user, role=Role.MANAGER), is_active=True
        ).select_related("funder")

    # --- upload ---------------------------------------------------------------------------------

    def upload_page(self, request):
        programs = self._programs(request)
        # Another funder's program answers as if it did not exist.
        wanted = request.POST.get("program") or request.GET.get("program")
        if wanted and not (wanted.isdigit() and programs.filter(pk=wanted).exists()):
            raise Http404
        form = UploadForm(
            request.POST or None,
            request.FILES or None,
            programs=programs,
            initial={"program": wanted},
        )
        return form, {"columns": column_rows(COLUMNS)}

    def upload_create(self, form, *, filename, content, by):
        return allocation_import_create(
            program=form.cleaned_data["program"],
            filename=filename,
            content=content,
            by=by,
            grant_to_holders=form.cleaned_data["grant_to_holders"],
        )

    def empty_file(self, request, *, french):
        return template_dataset(french_headers=french), "attributions" if french else "allocations"

    # --- result ---------------------------------------------------------------------------------

    def page_context(self, allocation_import):
        return {"program": allocation_import.program}

    def result_context(self, request, allocation_import):
        program = allocation_import.program
        rows = [
            {
                **row,
                "result_label": RESULTS[row["result"]],
                "amount_display": (
                    format_money(row["amount"], program.currency) if row["amount"] else ""
                ),
                "messages": [error_message(error) for error in row["errors"]]
                + ([row["already_holds"]] if row.get("already_holds") else []),
                "first_day": _day(row["valid_from"]),
                "last_day": _day(row["valid_until"]),
            }
            for row in allocation_import.report
        ]
        available = program.float_account.available
        return {
            "rows": rows,
            "rows_with_errors": sum(1 for row in rows if row["errors"]),
            "new_count": sum(1 for row in rows if row["result"] == "new"),
            "existing_count": sum(1 for row in rows if row["result"] == "existing"),
            "total_display": format_money(allocation_import.total_amount, program.currency),
            "available_display": format_money(available, program.currency),
            "can_confirm": allocation_import.status == Status.CHECKED,
            "can_recheck": allocation_import.status
            in (Status.CHECKED, Status.INVALID, Status.FAILED),
        }
