"""What a funder knows of the people it helps, for its eligibility criteria: the profiles (typed
by hand, one person at a time) and the files that bring them in bulk (upload with the legal
basis, the check's result row by row, confirmation, progress)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.validators import FileExtensionValidator
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from import_export.formats import base_formats

from funders.admin.scoping import FunderScopedAdmin
from funders.campaigns import profile_save
from funders.eligibility import MAX_ATTRIBUTE_LENGTH, MAX_HOUSEHOLD, age_on
from funders.models import BeneficiaryProfile, Enrolment, LegalBasis, ProfileImport
from funders.profile_imports import (
    ATTRIBUTE_PREFIX,
    OLDEST_BIRTH_DATE,
    SpreadsheetFileError,
    allowed_fields,
    column_label,
    error_message,
    funder_columns,
    profile_import_confirm,
    profile_import_create,
    profile_import_recheck,
    template_dataset,
)
from funders.spreadsheets import MAX_FILE_BYTES
from funders.tenancy import Role, funder_ids, funders_of, is_operator
from wallet.authorization import geo
from wallet.errors import InvalidState

Status = ProfileImport.Status
TEMPLATE_DIR = "admin/funders/profileimport"
RESULTS = {
    "new": _("New person"),
    "update": _("Update"),
    "unchanged": _("No change"),
    "invalid": _("Errors"),
}


# --- files of beneficiary data -------------------------------------------------------------------


class UploadForm(forms.Form):
    funder = forms.ModelChoiceField(label=_("funder"), queryset=None)
    legal_basis = forms.ChoiceField(
        label=_("legal basis"),
        choices=[("", "---------"), *LegalBasis.choices],
        help_text=_("Why you may process these data (GDPR article 6). Kept with each profile."),
    )
    people_informed = forms.BooleanField(
        label=_("The people were informed"),
        help_text=_(
            "I declare that the people in this file were told that these data are used to "
            "propose them aid, by whom, and of their rights (GDPR articles 13 and 14)."
        ),
        error_messages={
            "required": _("The people must be informed before their data are imported.")
        },
    )
    file = forms.FileField(
        label=_("file"),
        validators=[FileExtensionValidator(["csv", "xlsx"])],
        help_text=_("A .csv or .xlsx file, one row per person, at most 5 MB."),
    )

    def __init__(self, *args, funders, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["funder"].queryset = funders

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_FILE_BYTES:
            raise forms.ValidationError(
                _("The file is larger than 5 MB: split it into several files."), code="too_large"
            )
        return upload


@admin.register(ProfileImport)
class ProfileImportAdmin(FunderScopedAdmin):
    funder_path = "funder"
    view_role = Role.AGENT
    add_role = Role.MANAGER
    change_role = None  # a file is never edited: it is checked, confirmed, or sent again
    list_display = [
        "filename",
        "funder",
        "legal_basis",
        "status",
        "total_rows",
        "created_by",
        "created_at",
        "applied_at",
    ]
    list_filter = ["status", "funder"]
    list_select_related = ["funder", "created_by"]
    search_fields = ["filename"]

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("template.<str:extension>", wrap(self.template_view), name=f"{name}_template"),
            path("<path:object_id>/confirm/", wrap(self.confirm_view), name=f"{name}_confirm"),
            path("<path:object_id>/check/", wrap(self.recheck_view), name=f"{name}_recheck"),
            *super().get_urls(),
        ]

    def _funders(self, request):
        return funders_of(request.user, role=Role.MANAGER)

    def _wanted_funder(self, request, funders):
        """The funder a page is asked for (?funder=), else the user's first one. Another
        funder's answers as if it did not exist."""
        wanted = request.POST.get("funder") or request.GET.get("funder")
        if wanted:
            if not (wanted.isdigit() and funders.filter(pk=wanted).exists()):
                raise Http404
            return funders.get(pk=wanted)
        return funders.first()

    def _result_url(self, profile_import) -> str:
        return reverse(
            f"{self.admin_site.name}:funders_profileimport_change", args=[profile_import.pk]
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
        funders = self._funders(request)
        selected = self._wanted_funder(request, funders)
        form = UploadForm(
            request.POST or None,
            request.FILES or None,
            funders=funders,
            initial={"funder": selected.pk if selected else None},
        )
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                profile_import = profile_import_create(
                    funder=form.cleaned_data["funder"],
                    filename=upload.name,
                    content=upload.read(),
                    legal_basis=form.cleaned_data["legal_basis"],
                    by=request.user,
                )
            except SpreadsheetFileError as exc:
                form.add_error("file", str(exc.message))
            except InvalidState as exc:
                form.add_error(exc.field if exc.field in form.fields else None, str(exc.message))
            else:
                return redirect(self._result_url(profile_import))
        context = self._context(
            request,
            title=_("Import beneficiary data from a file"),
            form=form,
            funder=selected,
            funders=funders,
            columns=[
                {
                    "english": column.french
                    if column.name.startswith(ATTRIBUTE_PREFIX)
                    else column.name,
                    "french": column.french,
                    "label": column.label,
                    "help": column.help,
                }
                for column in (funder_columns(selected) if selected else [])
            ],
        )
        return TemplateResponse(request, f"{TEMPLATE_DIR}/upload.html", context)

    def template_view(self, request, extension):
        if not self.has_add_permission(request):
            raise PermissionDenied
        formats = {"csv": base_formats.CSV(), "xlsx": base_formats.XLSX()}
        if extension not in formats:
            raise Http404
        funder = self._wanted_funder(request, self._funders(request))
        if funder is None:
            raise Http404
        headers = request.GET.get("headers") or (get_language() or "")[:2]
        french = headers == "fr"
        file_format = formats[extension]
        dataset = template_dataset(funder=funder, french_headers=french)
        if extension == "csv":
            # What a spreadsheet program of the same language opens in columns: ";" and a BOM
            # in French, "," in English.
            data = "\ufeff" + file_format.export_data(dataset, delimiter=";" if french else ",")
        else:
            data = file_format.export_data(dataset)
        response = HttpResponse(data, content_type=file_format.get_content_type())
        filename = "donnees_beneficiaires" if french else "beneficiary_data"
        response["Content-Disposition"] = f'attachment; filename="{filename}.{extension}"'
        return response

    # --- result, progress, confirmation ---------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        profile_import = self.get_scoped_object(request, object_id, role=self.view_role)
        context = self._context(
            request,
            title=str(profile_import),
            original=profile_import,
            profile_import=profile_import,
            funder=profile_import.funder,
        )
        if profile_import.status in (Status.CHECKING, Status.APPLYING):
            return TemplateResponse(request, f"{TEMPLATE_DIR}/progress.html", context)
        rows = [
            {
                **row,
                "result_label": RESULTS[row["result"]],
                "changed_labels": [column_label(name) for name in row["changed"]],
                "messages": [error_message(error) for error in row["errors"]],
            }
            for row in profile_import.report
        ]
        may_act = self.has_add_permission(request) and self._allowed(
            request, Role.MANAGER, profile_import
        )
        count = {key: sum(1 for row in rows if row["result"] == key) for key in RESULTS}
        context.update(
            rows=rows,
            rows_with_errors=count["invalid"],
            new_count=count["new"],
            update_count=count["update"],
            unchanged_count=count["unchanged"],
            can_confirm=may_act and profile_import.status == Status.CHECKED,
            can_recheck=may_act
            and profile_import.status in (Status.CHECKED, Status.INVALID, Status.FAILED),
            may_add=may_act,
        )
        return TemplateResponse(request, f"{TEMPLATE_DIR}/result.html", context)

    def confirm_view(self, request, object_id):
        return self._act(request, object_id, profile_import_confirm)

    def recheck_view(self, request, object_id):
        return self._act(request, object_id, profile_import_recheck)

    def _act(self, request, object_id, service):
        profile_import = self.get_scoped_object(request, object_id, role=Role.MANAGER)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            service(profile_import=profile_import)
        except InvalidState as exc:
            self.message_user(request, exc.message, messages.ERROR)
        return redirect(self._result_url(profile_import))


# --- profiles ------------------------------------------------------------------------------------


class EnrolmentChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, enrolment):
        reference = f" ({enrolment.reference})" if enrolment.reference else ""
        return f"{enrolment.beneficiary}{reference} — {enrolment.funder}"


class ProfileForm(forms.ModelForm):
    """The checks of a file's cells (funders/profile_imports.py), for a profile typed by hand."""

    class Meta:
        model = BeneficiaryProfile
        fields = [
            "enrolment",
            "postcode",
            "commune",
            "birth_date",
            "household_size",
            "dependent_children",
            "income_bracket",
            "attributes",
            "legal_basis",
        ]
        field_classes = {"enrolment": EnrolmentChoiceField}

    def clean_commune(self):
        commune = (self.cleaned_data.get("commune") or "").strip().upper()
        if commune and geo.departement_from_commune(commune) is None:
            raise forms.ValidationError(
                _("This is not the INSEE code of a French commune."), code="invalid_commune"
            )
        return commune

    def clean_birth_date(self):
        day = self.cleaned_data.get("birth_date")
        if day is not None and day > timezone.localdate():
            raise forms.ValidationError(
                _("This date of birth is in the future."), code="birth_date_in_future"
            )
        if day is not None and day < OLDEST_BIRTH_DATE:
            raise forms.ValidationError(
                _("A date of birth before 1900 is surely a mistake."), code="birth_date_too_old"
            )
        return day

    def clean_household_size(self):
        size = self.cleaned_data.get("household_size")
        if size is not None and size > MAX_HOUSEHOLD:
            raise forms.ValidationError(
                _("At most %(max)s people."), code="out_of_range", params={"max": MAX_HOUSEHOLD}
            )
        return size

    def clean_attributes(self):
        attributes = self.cleaned_data.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise forms.ValidationError(
                _('Write the facts as {"name": "value", ...}.'), code="invalid_attributes"
            )
        enrolment = self.cleaned_data.get("enrolment") or getattr(self.instance, "enrolment", None)
        allowed = allowed_fields(enrolment.funder) if enrolment is not None else set()
        unused = sorted(name for name in attributes if f"{ATTRIBUTE_PREFIX}{name}" not in allowed)
        if unused:
            raise forms.ValidationError(
                _(
                    "No eligibility criterion of your programs uses %(names)s: we keep only what "
                    "the criteria need. Remove it."
                ),
                code="attribute_not_used",
                params={"names": ", ".join(f"“{name}”" for name in unused)},
            )
        cleaned = {}
        for name, value in attributes.items():
            text = "" if value is None else str(value).strip()
            if len(text) > MAX_ATTRIBUTE_LENGTH:
                raise forms.ValidationError(
                    _("“%(name)s”: at most %(max)s characters."),
                    code="too_long",
                    params={"name": name, "max": MAX_ATTRIBUTE_LENGTH},
                )
            if text:
                cleaned[name] = text
        return cleaned

    def clean(self):
        cleaned = super().clean()
        size, children = cleaned.get("household_size"), cleaned.get("dependent_children")
        if size is not None and children is not None and children >= size:
            self.add_error(
                "dependent_children",
                forms.ValidationError(
                    _(
                        "The household includes its children: it has more people than "
                        "dependent children."
                    ),
                    code="children_not_fewer_than_household",
                ),
            )
        return cleaned


@admin.register(BeneficiaryProfile)
class BeneficiaryProfileAdmin(FunderScopedAdmin):
    """One person's facts, as the criteria read them. Agents read them; managers type them (or
    import them from a file); nobody deletes one here (erasing the person's data does)."""

    funder_path = "enrolment__funder"
    view_role = Role.AGENT
    add_role = Role.MANAGER
    change_role = Role.MANAGER
    form = ProfileForm
    list_display = [
        "person",
        "reference",
        "postcode",
        "commune",
        "age",
        "household_size",
        "dependent_children",
        "income_bracket",
        "updated_at",
    ]
    list_filter = ["enrolment__funder", "legal_basis"]
    list_select_related = ["enrolment__beneficiary"]
    search_fields = [
        "enrolment__beneficiary__last_name",
        "enrolment__beneficiary__first_name",
        "enrolment__reference",
    ]
    ordering = ["enrolment__beneficiary__last_name", "enrolment__beneficiary__first_name"]

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": ["enrolment" if obj is None else "person_display"]}),
            (
                _("Facts"),
                {
                    "fields": [
                        "postcode",
                        "commune",
                        ("birth_date", "age"),
                        "household_size",
                        "dependent_children",
                        "income_bracket",
                        "attributes",
                    ]
                },
            ),
            (None, {"fields": ["legal_basis", *(["updated_at"] if obj else [])]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        readonly = ["age", "person_display", "updated_at"]
        if obj is not None and not self.has_change_permission(request, obj):
            readonly += [name for name in ProfileForm.Meta.fields if name != "enrolment"]
        return readonly

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "enrolment":
            # People of the user's funders (where they may type a profile) who have none yet.
            enrolments = Enrolment.objects.filter(
                profile__isnull=True, beneficiary__erased_at__isnull=True
            ).select_related("beneficiary", "funder")
            if not is_operator(request.user):
                enrolments = enrolments.filter(
                    funder__in=funder_ids(request.user, role=self.add_role)
                )
            kwargs["queryset"] = enrolments.order_by(
                "beneficiary__last_name", "beneficiary__first_name"
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=_("person"), ordering="enrolment__beneficiary__last_name")
    def person(self, profile):
        return profile.enrolment.beneficiary

    @admin.display(description=_("person"))
    def person_display(self, profile):
        enrolment = profile.enrolment
        reference = f" ({enrolment.reference})" if enrolment.reference else ""
        return f"{enrolment.beneficiary}{reference}"

    @admin.display(description=_("file number"), ordering="enrolment__reference")
    def reference(self, profile):
        return profile.enrolment.reference

    @admin.display(description=_("age"), ordering="-birth_date")
    def age(self, profile):
        if profile is None or profile.birth_date is None:
            return "-"
        return age_on(profile.birth_date, timezone.localdate())

    def save_model(self, request, obj, form, change):
        # The service gets only the facts that differ from the profile as stored.
        stored = BeneficiaryProfile.objects.filter(pk=obj.pk).first() if change else None
        data = {
            name: value
            for name, value in form.cleaned_data.items()
            if name not in ("enrolment", "legal_basis")
            and (stored is None or getattr(stored, name) != value)
        }
        saved = profile_save(
            enrolment=obj.enrolment,
            data=data,
            legal_basis=form.cleaned_data.get("legal_basis") or "",
            by=request.user,
        )
        obj.pk = saved.pk
