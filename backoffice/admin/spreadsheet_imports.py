"""What the two file imports' admin pages share (allocations: backoffice/admin/imports.py;
beneficiary data: backoffice/admin/profiles.py): the upload form's file, the empty file to start
from, the pages of the check's result and of the progress, and the confirm and "check again"
buttons. Each import says what is its own: the form's other fields, the service that stores a
file, the rows of its result page."""

from collections.abc import Callable, Iterable

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.validators import FileExtensionValidator
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from import_export.formats import base_formats

from backoffice.admin.scoping import FunderScopedAdmin
from core.errors import InvalidState
from funders.models import SpreadsheetImport
from funders.spreadsheets import MAX_FILE_BYTES, Column, SpreadsheetFileError
from funders.tenancy import Role

Status = SpreadsheetImport.Status


def column_rows(
    columns: Iterable[Column], *, english: Callable[[Column], str] = lambda column: column.name
) -> list[dict]:
    """The upload page's table of the columns (spreadsheetimport/columns.html): each one's
    title in English and in French, and what to write in it."""
    return [
        {
            "english": english(column),
            "french": column.french,
            "label": column.label,
            "help": column.help,
        }
        for column in columns
    ]


class SpreadsheetUploadForm(forms.Form):
    """The file of an upload form; a subclass adds its own fields (shown before the file) and
    says what a row is in `file_help`."""

    file_help = ""

    file = forms.FileField(label=_("file"), validators=[FileExtensionValidator(["csv", "xlsx"])])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = self.file_help
        self.order_fields([name for name in self.fields if name != "file"])

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(
                _("The file is larger than 5 MB: split it into several files."), code="too_large"
            )
        return upload


class SpreadsheetImportAdmin(FunderScopedAdmin):
    """The admin of a SpreadsheetImport model. A subclass sets:

    - `template_dir`: its templates' folder (upload.html, result.html, progress.html);
    - `object_name`: the import's name in the templates' context and in its services' arguments
      ("allocation_import");
    - `confirm_service`, `recheck_service`: the services behind the two buttons;
    - `upload_title`, and `upload_page(request)`: the upload form and the page's other context;
    - `upload_create(form, filename, content, by)`: store a valid upload (the create service);
    - `empty_file(request, french)`: the empty file to start from and its name, no extension;
    - `result_context(request, obj)`: the result page's rows and counts."""

    change_role = None  # a file is never edited: it is checked, confirmed, or sent again
    template_dir = ""
    object_name = ""
    upload_title = ""
    confirm_service = None  # staticmethod(the service)
    recheck_service = None

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("template.<str:extension>", wrap(self.template_view), name=f"{name}_template"),
            path("<path:object_id>/confirm/", wrap(self.confirm_view), name=f"{name}_confirm"),
            path("<path:object_id>/check/", wrap(self.recheck_view), name=f"{name}_recheck"),
            *super().get_urls(),
        ]

    def _result_url(self, spreadsheet_import) -> str:
        opts = self.opts
        return reverse(
            f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_change",
            args=[spreadsheet_import.pk],
        )

    def _context(self, request, **extra):
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "has_view_permission": self.has_view_permission(request),
            **extra,
        }

    # --- upload ---------------------------------------------------------------------------------

    def upload_page(self, request) -> tuple[forms.Form, dict]:
        raise NotImplementedError

    def upload_create(self, form, *, filename: str, content: bytes, by) -> SpreadsheetImport:
        raise NotImplementedError

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form, page = self.upload_page(request)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                spreadsheet_import = self.upload_create(
                    form, filename=upload.name, content=upload.read(), by=request.user
                )
            except SpreadsheetFileError as exc:
                form.add_error("file", str(exc.message))
            except InvalidState as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))
            else:
                return redirect(self._result_url(spreadsheet_import))
        context = self._context(request, title=self.upload_title, form=form, **page)
        return TemplateResponse(request, f"{self.template_dir}/upload.html", context)

    # --- the empty file to start from -----------------------------------------------------------

    def french_headers(self, request) -> bool:
        """Whether the empty file's column titles are in French: in the page's language."""
        return (get_language() or "").startswith("fr")

    def empty_file(self, request, *, french: bool):
        raise NotImplementedError

    def template_view(self, request, extension):
        if not self.has_add_permission(request):
            raise PermissionDenied
        formats = {"csv": base_formats.CSV(), "xlsx": base_formats.XLSX()}
        if extension not in formats:
            raise Http404
        french = self.french_headers(request)
        dataset, filename = self.empty_file(request, french=french)
        file_format = formats[extension]
        if extension == "csv":
            # What a spreadsheet program of the same language opens in columns: ";" and a BOM
            # in French, "," in English.
            data = "\ufeff" + file_format.export_data(dataset, delimiter=";" if french else ",")
        else:
            data = file_format.export_data(dataset)
        response = HttpResponse(data, content_type=file_format.get_content_type())
        response["Content-Disposition"] = f'attachment; filename="{filename}.{extension}"'
        return response

    # --- result, progress, confirmation ---------------------------------------------------------

    def result_context(self, request, spreadsheet_import) -> dict:
        raise NotImplementedError

    def page_context(self, spreadsheet_import) -> dict:
        """What both the result and the progress pages show beside the import."""
        return {}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        spreadsheet_import = self.get_scoped_object(request, object_id, role=self.view_role)
        context = self._context(
            request,
            title=str(spreadsheet_import),
            original=spreadsheet_import,
            spreadsheet_import=spreadsheet_import,
            **{self.object_name: spreadsheet_import},
            **self.page_context(spreadsheet_import),
        )
        if spreadsheet_import.status in (Status.CHECKING, Status.APPLYING):
            return TemplateResponse(request, f"{self.template_dir}/progress.html", context)
        context.update(self.result_context(request, spreadsheet_import))
        return TemplateResponse(request, f"{self.template_dir}/result.html", context)

    def confirm_view(self, request, object_id):
        return self._act(request, object_id, self.confirm_service)

    def recheck_view(self, request, object_id):
        return self._act(request, object_id, self.recheck_service)

    def _act(self, request, object_id, service):
        spreadsheet_import = self.get_scoped_object(request, object_id, role=Role.MANAGER)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            service(**{self.object_name: spreadsheet_import})
        except InvalidState as exc:
            self.message_user(request, exc.message, messages.ERROR)
        return redirect(self._result_url(spreadsheet_import))
