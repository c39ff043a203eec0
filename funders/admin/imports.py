"""Allocating from a file: upload, the check's result row by row, confirmation, progress."""

from datetime import date

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.validators import FileExtensionValidator
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from import_export.formats import base_formats

from funders.admin.scoping import FunderScopedAdmin
from funders.imports import (
    COLUMNS,
    MAX_FILE_BYTES,
    ImportFileError,
    error_message,
    import_confirm,
    import_create,
    import_recheck,
    template_dataset,
)
from funders.models import AllocationImport, Program
from funders.tenancy import Role, funders_of
from wallet.authorization.codes import format_money
from wallet.errors import InvalidState

Status = AllocationImport.Status
TEMPLATE_DIR = "admin/funders/allocationimport"
RESULTS = {
    "new": _("New beneficiary"),
    "existing": _("Existing beneficiary"),
    "already_allocated": _("Already allocated"),
    "invalid": _("Errors"),
}


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


class UploadForm(forms.Form):
    program = forms.ModelChoiceField(label=_("program"), queryset=Program.objects.none())
    file = forms.FileField(
        label=_("file"),
        validators=[FileExtensionValidator(["csv", "xlsx"])],
        help_text=_("A .csv or .xlsx file, one row per allocation, at most 5 MB."),
    )

    def __init__(self, *args, programs, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["program"].queryset = programs

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(
                _("The file is larger than 5 MB: split it into several files."), code="too_large"
            )
        return upload


@admin.register(AllocationImport)
class AllocationImportAdmin(FunderScopedAdmin):
    funder_path = "program__funder"
    # Imports move money: managers only, agents do not see them.
    view_role = Role.MANAGER
    add_role = Role.MANAGER
    change_role = None  # a file is never edited: it is checked, confirmed, or sent again
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

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("template.<str:extension>", wrap(self.template_view), name=f"{name}_template"),
            path("<path:object_id>/confirm/", wrap(self.confirm_view), name=f"{name}_confirm"),
            path("<path:object_id>/check/", wrap(self.recheck_view), name=f"{name}_recheck"),
            *super().get_urls(),
        ]

    def _programs(self, request):
        return Program.objects.filter(
            funder__in=funders_of(request.user, role=Role.MANAGER), is_active=True
        ).select_related("funder")

    def _result_url(self, allocation_import) -> str:
        return reverse(
            f"{self.admin_site.name}:funders_allocationimport_change", args=[allocation_import.pk]
        )

    def _context(self, request, **extra):
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "has_view_permission": self.has_view_permission(request),
            **extra,
        }

    # --- upload ---------------------------------------------------------------------------------

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
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
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                allocation_import = import_create(
                    program=form.cleaned_data["program"],
                    filename=upload.name,
                    content=upload.read(),
                    by=request.user,
                )
            except ImportFileError as exc:
                form.add_error("file", str(exc.message))
            except InvalidState as exc:
                form.add_error("program", str(exc.message))
            else:
                return redirect(self._result_url(allocation_import))
        context = self._context(
            request,
            title=_("Allocate aid from a file"),
            form=form,
            columns=COLUMNS,
        )
        return TemplateResponse(request, f"{TEMPLATE_DIR}/upload.html", context)

    def template_view(self, request, extension):
        if not self.has_add_permission(request):
            raise PermissionDenied
        formats = {"csv": base_formats.CSV(), "xlsx": base_formats.XLSX()}
        if extension not in formats:
            raise Http404
        french = (get_language() or "").startswith("fr")
        file_format = formats[extension]
        dataset = template_dataset(french_headers=french)
        if extension == "csv":
            # What a spreadsheet program of the same language opens in columns: ";" and a BOM
            # in French, "," in English.
            data = "\ufeff" + file_format.export_data(dataset, delimiter=";" if french else ",")
        else:
            data = file_format.export_data(dataset)
        response = HttpResponse(data, content_type=file_format.get_content_type())
        filename = "attributions" if french else "allocations"
        response["Content-Disposition"] = f'attachment; filename="{filename}.{extension}"'
        return response

    # --- result, progress, confirmation ---------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        allocation_import = self.get_scoped_object(request, object_id, role=Role.MANAGER)
        program = allocation_import.program
        context = self._context(
            request,
            title=str(allocation_import),
            original=allocation_import,
            allocation_import=allocation_import,
            program=program,
        )
        if allocation_import.status in (Status.CHECKING, Status.APPLYING):
            return TemplateResponse(request, f"{TEMPLATE_DIR}/progress.html", context)
        rows = [
            {
                **row,
                "result_label": RESULTS[row["result"]],
                "amount_display": (
                    format_money(row["amount"], program.currency) if row["amount"] else ""
                ),
                "messages": [error_message(error) for error in row["errors"]],
                "first_day": _day(row["valid_from"]),
                "last_day": _day(row["valid_until"]),
            }
            for row in allocation_import.report
        ]
        available = program.float_account.available
        context.update(
            rows=rows,
            rows_with_errors=sum(1 for row in rows if row["errors"]),
            new_count=sum(1 for row in rows if row["result"] == "new"),
            existing_count=sum(1 for row in rows if row["result"] == "existing"),
            total_display=format_money(allocation_import.total_amount, program.currency),
            available_display=format_money(available, program.currency),
            can_confirm=allocation_import.status == Status.CHECKED,
            can_recheck=allocation_import.status in (Status.CHECKED, Status.INVALID, Status.FAILED),
        )
        return TemplateResponse(request, f"{TEMPLATE_DIR}/result.html", context)

    def confirm_view(self, request, object_id):
        return self._act(request, object_id, import_confirm)

    def recheck_view(self, request, object_id):
        return self._act(request, object_id, import_recheck)

    def _act(self, request, object_id, service):
        allocation_import = self.get_scoped_object(request, object_id, role=Role.MANAGER)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            service(allocation_import=allocation_import)
        except InvalidState as exc:
            self.message_user(request, exc.message, messages.ERROR)
        return redirect(self._result_url(allocation_import))
