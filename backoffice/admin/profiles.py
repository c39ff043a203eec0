"""What a funder knows of the people it helps, for its eligibility criteria: the profiles (typed
by hand, one person at a time) and the files that bring them in bulk (upload with the legal
basis, the check's result row by row, confirmation, progress)."""

from django import forms
from django.contrib import admin
from django.http import Http404
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from backoffice.admin.scoping import FunderScopedAdmin
from backoffice.admin.spreadsheet_imports import (
    SpreadsheetImportAdmin,
    SpreadsheetUploadForm,
    column_rows,
)
from funders.campaigns import PROFILE_FIELDS, profile_save
from funders.eligibility import age_on
from funders.models import BeneficiaryProfile, Enrolment, LegalBasis, ProfileImport
from funders.profile_imports import (
    ATTRIBUTE_PREFIX,
    allowed_fields,
    column_label,
    error_message,
    funder_columns,
    profile_import_confirm,
    profile_import_create,
    profile_import_recheck,
    template_dataset,
)
from funders.tenancy import Role, funder_ids, funders_of, is_operator

Status = ProfileImport.Status
RESULTS = {
    "new": _("New person"),
    "update": _("Update"),
    "unchanged": _("No change"),
    "invalid": _("Errors"),
}


# --- files of beneficiary data -------------------------------------------------------------------


class UploadForm(SpreadsheetUploadForm):
    file_help = _("A .csv or .xlsx file, one row per person, at most 5 MB.")

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

    def __init__(self, *args, funders, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["funder"].queryset = funders


@admin.register(ProfileImport)
class ProfileImportAdmin(SpreadsheetImportAdmin):
    funder_path = "funder"
    view_role = Role.AGENT
    add_role = Role.MANAGER
    template_dir = "admin/funders/profileimport"
    object_name = "profile_import"
    upload_title = _("Import beneficiary data from a file")
    confirm_service = staticmethod(profile_import_confirm)
    recheck_service = staticmethod(profile_import_recheck)
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

    # --- upload ---------------------------------------------------------------------------------

    def upload_page(self, request):
        funders = self._funders(request)
        selected = self._wanted_funder(request, funders)
        form = UploadForm(
            request.POST or None,
            request.FILES or None,
            funders=funders,
            initial={"funder": selected.pk if selected else None},
        )
        columns = column_rows(
            funder_columns(selected) if selected else [],
            # An attribute's column has the same title in both languages: its name.
            english=lambda column: (
                column.french if column.name.startswith(ATTRIBUTE_PREFIX) else column.name
            ),
        )
        return form, {"funder": selected, "funders": funders, "columns": columns}

    def upload_create(self, form, *, filename, content, by):
        return profile_import_create(
            funder=form.cleaned_data["funder"],
            filename=filename,
            content=content,
            legal_basis=form.cleaned_data["legal_basis"],
            by=by,
        )

    def french_headers(self, request):
        # The page's language, unless the link asks for the other one (?headers=fr / en).
        return (request.GET.get("headers") or (get_language() or "")[:2]) == "fr"

    def empty_file(self, request, *, french):
        funder = self._wanted_funder(request, self._funders(request))
        if funder is None:
            raise Http404
        dataset = template_dataset(funder=funder, french_headers=french)
        return dataset, "donnees_beneficiaires" if french else "beneficiary_data"

    # --- result ---------------------------------------------------------------------------------

    def page_context(self, profile_import):
        return {"funder": profile_import.funder}

    def result_context(self, request, profile_import):
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
        return {
            "rows": rows,
            "rows_with_errors": count["invalid"],
            "new_count": count["new"],
            "update_count": count["update"],
            "unchanged_count": count["unchanged"],
            "can_confirm": may_act and profile_import.status == Status.CHECKED,
            "can_recheck": may_act
            and profile_import.status in (Status.CHECKED, Status.INVALID, Status.FAILED),
            "may_add": may_act,
        }


# --- profiles ------------------------------------------------------------------------------------


class EnrolmentChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, enrolment):
        reference = f" ({enrolment.reference})" if enrolment.reference else ""
        return f"{enrolment.beneficiary}{reference} — {enrolment.funder}"


class ProfileForm(forms.ModelForm):
    """A profile typed by hand: the model checks the values (as for a file's rows); the form
    adds that a fact from the funder's files must be one its criteria read."""

    class Meta:
        model = BeneficiaryProfile
        fields = ["enrolment", *PROFILE_FIELDS, "legal_basis"]
        field_classes = {"enrolment": EnrolmentChoiceField}

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
        # Kept as text, as a file's cells are; the model checks their length.
        texts = {
            name: "" if value is None else str(value).strip() for name, value in attributes.items()
        }
        return {name: text for name, text in texts.items() if text}


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
