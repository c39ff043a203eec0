"""What a funder knows of the people it helps (postcode, birth date, household...), read from a
spreadsheet (CSV or XLSX) into their eligibility profiles, in two steps, as allocation files are
(funders/imports.py; the reading is funders/spreadsheets.py's).

**Data minimisation.** A fact column is accepted only when an eligibility criterion of one of
the funder's active programs reads it (`eligibility.criteria_fields`): a file bringing anything
else is refused whole, naming the columns. The identity columns (file number, names, email,
phone) are always accepted: they say who a row is about.

**Legal basis.** Each file states why the funder may process these data (LegalBasis); it is kept
on the import and on each profile the file writes.

The **check** (a dry run) says for each row whether it adds a new person, updates someone's
facts (naming the facts that change, never their values: the report is kept), changes nothing,
or what is wrong with it. It writes nothing but its report.

The **apply** writes every row in one transaction, all or nothing, through `profile_save`, then
asks once for the re-evaluation of the funder's campaigns over the people whose facts changed.
A cell left empty in a column of the file clears that fact: the file is the funder's current
truth. Applying the same file again changes nothing. Once applied, the file's content is
dropped (the facts are in the profiles); its report is kept."""

from dataclasses import dataclass, field

import tablib
from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from import_export import widgets

from core.errors import InvalidState
from engine import geo
from funders import tasks
from funders.campaigns import profile_save, profiles_changed
from funders.eligibility import (
    MAX_ATTRIBUTE_LENGTH,
    MAX_HOUSEHOLD,
    OLDEST_BIRTH_DATE,
    criteria_fields,
)
from funders.models import (
    BeneficiaryProfile,
    EligibilityCriterion,
    Enrolment,
    Funder,
    LegalBasis,
    ProfileImport,
)
from funders.services import beneficiary_enrol
from funders.spreadsheets import (
    PROGRESS_EVERY,
    CellError,
    Column,
    DayWidget,
    EmailWidget,
    FileRow,
    ImportSteps,
    PhoneWidget,
    PostcodeWidget,
    SpreadsheetFileError,
    TextWidget,
    WholeNumberWidget,
    error_text,
    header_key,
    map_headers,
    match_beneficiary,
    person_duplicate_error,
    read_table,
    row_error,
    spreadsheet_number,
)
from funders.spreadsheets import ROW_MESSAGES as SHARED_ROW_MESSAGES
from wallet.models import Beneficiary
from wallet.services import beneficiary_create

Status = ProfileImport.Status
ATTRIBUTE_PREFIX = "attributes."

# --- the columns ---------------------------------------------------------------------------------

IDENTITY_COLUMNS = (
    Column(
        "reference",
        "numero_dossier",
        _("file number"),
        _("Your own number for this person. Used first to recognise someone you already help."),
        aliases=("numero_de_dossier", "dossier"),
    ),
    Column(
        "first_name", "prenom", _("first name"), _("Required only for someone you do not help yet.")
    ),
    Column("last_name", "nom", _("last name"), _("Required only for someone you do not help yet.")),
    Column(
        "email",
        "email",
        _("email"),
        _(
            "Recognises someone you already help when there is no file number. For someone you "
            "do not help yet, an email address or a mobile phone number is required."
        ),
        aliases=("courriel", "e_mail", "mail"),
    ),
    Column(
        "phone", "telephone", _("mobile phone"), _("Such as 06 12 34 56 78."), aliases=("mobile",)
    ),
)
FACT_COLUMNS = (
    Column("postcode", "code_postal", _("postcode"), _("5 digits.")),
    Column(
        "commune",
        "commune",
        _("commune (INSEE code)"),
        _("The commune's INSEE code, such as 38185 for Grenoble (not its postcode)."),
        aliases=("code_commune", "code_insee", "insee"),
    ),
    Column(
        "birth_date",
        "date_naissance",
        _("date of birth"),
        _("2026-12-01 or 01/12/2026."),
        aliases=("date_de_naissance", "naissance"),
    ),
    Column(
        "household_size",
        "taille_foyer",
        _("people in the household"),
        _("From 1 to 30, the person included."),
        aliases=("personnes_foyer", "taille_du_foyer", "nombre_de_personnes_au_foyer"),
    ),
    Column(
        "dependent_children",
        "enfants_a_charge",
        _("dependent children"),
        _("0 or more, fewer than the people in the household (who include the children)."),
        aliases=("enfants",),
    ),
    Column(
        "income_bracket",
        "tranche_revenus",
        _("income bracket"),
        _("Your own income brackets, from 1 (the lowest) to 20."),
        aliases=("tranche_de_revenus",),
    ),
)
FACT_FIELDS = tuple(column.name for column in FACT_COLUMNS)
IDENTITY_FIELDS = tuple(column.name for column in IDENTITY_COLUMNS)
LABELS = {column.name: column.label for column in (*IDENTITY_COLUMNS, *FACT_COLUMNS)}


def attribute_column(name: str) -> Column:
    return Column(
        f"{ATTRIBUTE_PREFIX}{name}",
        name,
        name,
        _("A fact from your own files that a criterion names: text, at most 100 characters."),
    )


def column_label(name: str) -> str:
    """A column's name in the report's words: "people in the household", "quotient_familial"."""
    if name.startswith(ATTRIBUTE_PREFIX):
        return name.removeprefix(ATTRIBUTE_PREFIX)
    return str(LABELS.get(name, name))


def allowed_fields(funder: Funder) -> set[str]:
    """The facts an import may bring for this funder: those its active programs' criteria read
    ("postcode", ..., "attributes.<name>")."""
    criteria = EligibilityCriterion.objects.filter(
        program__funder=funder, program__is_active=True
    ).select_related("other_program")
    return criteria_fields(criteria)


def columns_for(allowed: set[str]) -> list[Column]:
    """The columns a file may have when the criteria read `allowed`, in the template's order:
    who the person is, then the facts."""
    facts = [column for column in FACT_COLUMNS if column.name in allowed]
    attributes = sorted(
        name.removeprefix(ATTRIBUTE_PREFIX) for name in allowed if name.startswith(ATTRIBUTE_PREFIX)
    )
    return [*IDENTITY_COLUMNS, *facts, *map(attribute_column, attributes)]


def funder_columns(funder: Funder) -> list[Column]:
    """The columns a file of this funder may have: who the person is, then the facts its
    criteria use."""
    return columns_for(allowed_fields(funder))


def template_dataset(*, funder: Funder, french_headers: bool) -> tablib.Dataset:
    """An empty file for this funder: the identity columns and the facts its criteria use."""
    columns = funder_columns(funder)
    return tablib.Dataset(headers=[c.french if french_headers else c.name for c in columns])


# --- reading cells -------------------------------------------------------------------------------


class CommuneWidget(widgets.Widget):
    def clean(self, value, row=None, **kwargs):
        value = spreadsheet_number(value)
        if isinstance(value, int):  # a number cell lost the leading zero of 01004
            value = str(value).zfill(5)
        text = str(value or "").strip().upper()
        if text and geo.departement_from_commune(text) is None:
            raise CellError("invalid_commune", value=text)
        return text


class BirthDateWidget(DayWidget):
    def clean(self, value, row=None, **kwargs):
        day = super().clean(value, row, **kwargs)
        if day is None:
            return None
        if day > timezone.localdate():
            raise CellError("birth_date_in_future", value=day.isoformat())
        if day < OLDEST_BIRTH_DATE:
            raise CellError("birth_date_too_old", value=day.isoformat())
        return day


WIDGETS = {
    "reference": TextWidget(max_length=64),
    "first_name": TextWidget(max_length=100),
    "last_name": TextWidget(max_length=100),
    "email": EmailWidget(max_length=254),
    "phone": PhoneWidget(max_length=32),
    "postcode": PostcodeWidget(max_length=5),
    "commune": CommuneWidget(),
    "birth_date": BirthDateWidget(),
    "household_size": WholeNumberWidget(minimum=1, maximum=MAX_HOUSEHOLD),
    "dependent_children": WholeNumberWidget(minimum=0, maximum=MAX_HOUSEHOLD - 1),
    "income_bracket": WholeNumberWidget(minimum=1, maximum=20),
}
ATTRIBUTE_WIDGET = TextWidget(max_length=MAX_ATTRIBUTE_LENGTH)
EMPTY = {"birth_date": None, "household_size": None, "dependent_children": None}
EMPTY.update(income_bracket=None, postcode="", commune="")


# --- reading a file ------------------------------------------------------------------------------


def _columns_reader(allowed: set[str]):
    """The `columns` function of read_table for a funder whose criteria read `allowed`."""
    columns = columns_for(allowed)
    known = {}
    for column in columns:
        for alias in column.accepted:
            known.setdefault(header_key(alias), column.name)

    def read(headers) -> dict[int, str]:
        found, refused = map_headers(
            headers, known=known, labels={c.name: column_label(c.name) for c in columns}
        )
        accepted = ", ".join(column.name for column in IDENTITY_COLUMNS)
        accepted_facts = [
            column.french if column.name.startswith(ATTRIBUTE_PREFIX) else column.name
            for column in columns[len(IDENTITY_COLUMNS) :]
        ]
        if refused and not accepted_facts:
            raise SpreadsheetFileError(
                _(
                    "These columns are refused: %(columns)s. Your programs have no eligibility "
                    "criteria yet, so there is no fact to import: we keep only what the criteria "
                    "need. Add the criteria on the programs' pages first."
                )
                % {"columns": ", ".join(f"“{title}”" for title in refused)}
            )
        if refused:
            raise SpreadsheetFileError(
                _(
                    "These columns are refused: %(columns)s. No eligibility criterion of your "
                    "programs uses them: we keep only what the criteria need. Remove them from "
                    "the file. The columns accepted are: %(accepted)s."
                )
                % {
                    "columns": ", ".join(f"“{title}”" for title in refused),
                    "accepted": ", ".join([accepted, *accepted_facts]),
                }
            )
        names = set(found.values())
        if not names & {"reference", "email", "phone"}:
            raise SpreadsheetFileError(
                _(
                    "Add a “reference” (file number), “email” or “phone” column: each row must "
                    "say who it is about."
                )
            )
        if not names - set(IDENTITY_FIELDS):
            if not accepted_facts:
                raise SpreadsheetFileError(
                    _(
                        "Your programs have no eligibility criteria yet: there is no fact to "
                        "import. Add the criteria on the programs' pages first."
                    )
                )
            raise SpreadsheetFileError(
                _("The file has no column of facts. The facts your criteria use are: %(facts)s.")
                % {"facts": ", ".join(accepted_facts)}
            )
        return found

    return read


def read_rows(*, funder: Funder, content: bytes, filename: str) -> list[FileRow]:
    """The file's rows, or SpreadsheetFileError when the file as a whole cannot be used (a
    column that no criterion of the funder reads, among others)."""
    return read_table(
        content=content, filename=filename, columns=_columns_reader(allowed_fields(funder))
    )


# --- checking rows -------------------------------------------------------------------------------

ROW_MESSAGES = {
    **SHARED_ROW_MESSAGES,
    "invalid_commune": _(
        "“%(value)s” is not the INSEE code of a French commune (5 characters, such as 38185 or "
        "2A004)."
    ),
    "birth_date_in_future": _("This date of birth is in the future."),
    "birth_date_too_old": _("A date of birth before 1900 is surely a mistake."),
    "not_a_whole_number": _("“%(value)s” is not a whole number."),
    "out_of_range": _("Write a number from %(min)s to %(max)s."),
    "children_not_fewer_than_household": _(
        "%(children)s dependent children in a household of %(household)s people: the household "
        "includes its children, so it has more people than children."
    ),
    "identity_missing": _(
        "Give the person's file number, email or phone, to say who this row is about."
    ),
    "person_unknown": _(
        "Nobody you help has this file number, email or phone. To add this person, give their "
        "first name, last name, and an email address or a mobile phone number."
    ),
    "changed_since_check": _(
        "This row is no longer about the same person as when the file was checked: check the "
        "file again."
    ),
}


def error_message(error: dict) -> str:
    """One problem of a row in plain words, with the column it is about."""
    labels = {error["field"]: column_label(error["field"])} if error["field"] else {}
    return error_text(error, messages=ROW_MESSAGES, labels=labels)


@dataclass
class Row:
    number: int
    identity: dict  # reference, first_name, last_name, email, phone ("" when not given)
    facts: dict  # the fact columns of the file: field → value (empty: "" or None)
    attributes: dict  # the attribute columns of the file: name → text ("" clears it)
    errors: list[dict] = field(default_factory=list)
    beneficiary: Beneficiary | None = None
    enrolment: Enrolment | None = None
    is_new: bool = False  # nobody known matched: applying creates the person
    changes: list[str] = field(default_factory=list)  # the names of what applying changes

    @property
    def result(self) -> str:
        if self.errors:
            return "invalid"
        if self.is_new:
            return "new"
        return "update" if self.changes else "unchanged"

    def report(self) -> dict:
        identity = self.identity
        name = f"{identity['first_name']} {identity['last_name']}".strip()
        return {
            "row": self.number,
            "reference": identity["reference"],
            "name": name or (str(self.beneficiary) if self.beneficiary else ""),
            "result": self.result,
            # Which facts change, never their values: the report is kept.
            "changed": self.changes,
            "beneficiary_id": self.beneficiary.pk if self.beneficiary else None,
            "errors": self.errors,
        }

    def profile_data(self, profile: BeneficiaryProfile | None) -> dict:
        """What profile_save writes: the file's facts, empty cells included (they clear the
        fact), and the person's attributes with the file's replacing theirs."""
        data = dict(self.facts)
        if self.attributes:
            attributes = dict(profile.attributes) if profile is not None else {}
            for name, value in self.attributes.items():
                if value:
                    attributes[name] = value
                else:
                    attributes.pop(name, None)
            data["attributes"] = attributes
        return data


def _read_row(file_row: FileRow) -> Row:
    identity = dict.fromkeys(IDENTITY_FIELDS, "")
    facts, attributes, errors = {}, {}, []
    for name, value in file_row.cells.items():
        widget = ATTRIBUTE_WIDGET if name.startswith(ATTRIBUTE_PREFIX) else WIDGETS[name]
        try:
            cleaned = widget.clean(value)
        except CellError as exc:
            errors.append(row_error(name, exc.code, **exc.params))
            continue
        if name.startswith(ATTRIBUTE_PREFIX):
            attributes[name.removeprefix(ATTRIBUTE_PREFIX)] = cleaned
        elif name in IDENTITY_FIELDS:
            identity[name] = cleaned
        else:
            facts[name] = cleaned if cleaned is not None else EMPTY[name]
    return Row(file_row.number, identity, facts, attributes, errors)


def _match(funder: Funder, row: Row) -> tuple[Beneficiary | None, list[dict]]:
    identity = row.identity
    return match_beneficiary(
        funder, reference=identity["reference"], email=identity["email"], phone=identity["phone"]
    )


def _profile_of(enrolment: Enrolment | None) -> BeneficiaryProfile | None:
    if enrolment is None:
        return None
    return BeneficiaryProfile.objects.filter(enrolment=enrolment).first()


def _changes(row: Row, profile: BeneficiaryProfile | None) -> list[str]:
    """The names of the facts (and the file number) applying this row changes."""
    changes = []
    reference = row.identity["reference"]
    if reference and row.enrolment is not None and row.enrolment.reference != reference:
        changes.append("reference")
    for name, value in row.facts.items():
        if (getattr(profile, name) if profile is not None else EMPTY[name]) != value:
            changes.append(name)
    known = profile.attributes if profile is not None else {}
    for name, value in row.attributes.items():
        if known.get(name, "") != value:
            changes.append(f"{ATTRIBUTE_PREFIX}{name}")
    return changes


def _check_household(row: Row, profile: BeneficiaryProfile | None) -> None:
    # Compared as they will be after the apply: the file's value, else the one known.
    failed = {error["field"] for error in row.errors}
    if failed & {"household_size", "dependent_children"}:
        return

    def value(name):
        if name in row.facts:
            return row.facts[name]
        return getattr(profile, name) if profile is not None else None

    size, children = value("household_size"), value("dependent_children")
    if size is not None and children is not None and children >= size:
        row.errors.append(
            row_error(
                "dependent_children",
                "children_not_fewer_than_household",
                children=children,
                household=size,
            )
        )


def _evaluate(*, funder: Funder, rows: list[FileRow], progress=None) -> list[Row]:
    """What each row would do, or what is wrong with it. Reads only."""
    seen: dict[tuple, int] = {}
    results = []
    for position, file_row in enumerate(rows, start=1):
        row = _read_row(file_row)
        identity = row.identity
        profile = None
        if not any(e["field"] in ("reference", "email", "phone") for e in row.errors):
            if not (identity["reference"] or identity["email"] or identity["phone"]):
                row.errors.append(row_error(None, "identity_missing"))
            else:
                row.beneficiary, problems = _match(funder, row)
                row.errors += problems
                if row.beneficiary is not None:
                    row.enrolment = Enrolment.objects.get(
                        funder=funder, beneficiary=row.beneficiary
                    )
                    profile = _profile_of(row.enrolment)
                elif not problems:
                    can_create = (
                        identity["first_name"]
                        and identity["last_name"]
                        and (identity["email"] or identity["phone"])
                    )
                    if can_create:
                        row.is_new = True
                    elif not {"first_name", "last_name"} & {e["field"] for e in row.errors}:
                        row.errors.append(row_error(None, "person_unknown"))
                error = person_duplicate_error(
                    number=row.number,
                    reference=identity["reference"],
                    email=identity["email"],
                    phone=identity["phone"],
                    beneficiary=row.beneficiary,
                    seen=seen,
                )
                if error is not None:
                    row.errors.append(error)
        _check_household(row, profile)
        row.changes = _changes(row, profile)
        results.append(row)
        if progress is not None and position % PROGRESS_EVERY == 0:
            progress(position)
    return results


# --- the steps -----------------------------------------------------------------------------------


class ProfileImportSteps(ImportSteps):
    model = ProfileImport
    related = ("funder",)
    check_task = tasks.profile_import_check
    apply_task = tasks.profile_import_apply
    changed_message = _("Some rows changed since the check (see below). Nothing was written.")
    refused_message = _("%(reason)s Nothing was written.")
    race_message = _(
        "Another change was made at the same moment. Nothing was written: check the file again."
    )

    def read_rows(self, profile_import: ProfileImport) -> list[FileRow]:
        # The funder's criteria now: a file bringing a fact no criterion reads any more is
        # refused.
        return read_rows(
            funder=profile_import.funder,
            content=bytes(profile_import.content),
            filename=profile_import.filename,
        )

    def evaluate(self, profile_import: ProfileImport, file_rows, *, progress=None) -> list[Row]:
        return _evaluate(funder=profile_import.funder, rows=file_rows, progress=progress)

    def lock_owner(self, profile_import: ProfileImport) -> None:
        profile_import.funder = Funder.objects.select_for_update().get(pk=profile_import.funder_id)

    def as_checked(self, profile_import: ProfileImport, rows: list[Row]) -> bool:
        return _same_people(rows, profile_import.report)

    def write(self, profile_import: ProfileImport, rows: list[Row]) -> tuple[str, ...]:
        funder = profile_import.funder
        changed = [
            row.beneficiary.pk
            for row in rows
            if _write(row, funder=funder, profile_import=profile_import)
        ]
        # One re-evaluation for the whole file, queued once all of it is committed.
        profiles_changed(funder=funder, beneficiary_ids=changed)
        # Data minimisation: the facts now live in the profiles, and nothing reads an applied
        # file again; its report (who, which facts changed) is kept.
        profile_import.content = b""
        return ("content",)


_steps = ProfileImportSteps()


def profile_import_create(
    *,
    funder: Funder,
    filename: str,
    content: bytes,
    legal_basis: str,
    by: AbstractBaseUser | None = None,
) -> ProfileImport:
    """Store an uploaded file and check it: at once when it is small, else in a task (the page
    shows the progress). SpreadsheetFileError when the file cannot be used at all (a column no
    criterion reads, among others); InvalidState without a legal basis."""
    if legal_basis not in LegalBasis.values:
        raise InvalidState(
            message=gettext("Say on what legal basis you process these data."),
            field="legal_basis",
        )
    rows = read_rows(funder=funder, content=content, filename=filename)
    return _steps.create(
        funder=funder,
        legal_basis=legal_basis,
        filename=filename,
        content=content,
        total_rows=len(rows),
        by=by,
    )


def profile_import_recheck(*, profile_import: ProfileImport) -> ProfileImport:
    """Check a file again, after the criteria or someone's record changed."""
    return _steps.recheck(profile_import)


def profile_import_check(*, profile_import: ProfileImport) -> ProfileImport:
    """The dry run: each row's result in the report. Safe to run twice; does nothing unless the
    import is being checked."""
    return _steps.check(profile_import)


def profile_import_confirm(*, profile_import: ProfileImport) -> ProfileImport:
    """Start applying a checked file (see ImportSteps.confirm)."""
    return _steps.confirm(profile_import)


def _same_person(row: Row, entry: dict | None) -> bool:
    """Whether a row is about whom the check found: a new person again, or the same one."""
    if entry is None:
        return False
    if row.is_new:
        return entry["result"] == "new"
    return entry["result"] != "new" and entry["beneficiary_id"] == row.beneficiary.pk


def _same_people(rows: list[Row], report: list[dict]) -> bool:
    """Whether every row is valid and about whom the check found; marks the rows that are
    not."""
    checked = {entry["row"]: entry for entry in report}
    for row in rows:
        if not row.errors and not _same_person(row, checked.get(row.number)):
            row.errors.append(row_error(None, "changed_since_check"))
    return not any(row.errors for row in rows)


def profile_import_apply(*, profile_import: ProfileImport) -> ProfileImport:
    """Write every row of a confirmed file, in one transaction: all rows or none; then ask once
    for the re-evaluation of the funder's campaigns over the people whose facts changed (see
    ImportSteps.apply for the progress).

    The funder's row is locked, so two files of one funder apply one after the other, and the
    second is checked again against what the first wrote."""
    return _steps.apply(profile_import)


def _write(row: Row, *, funder: Funder, profile_import: ProfileImport) -> bool:
    """Apply one row; True when the person's facts changed."""
    identity = row.identity
    if not row.is_new and not row.changes:
        return False
    if row.is_new:
        row.beneficiary = beneficiary_create(
            first_name=identity["first_name"],
            last_name=identity["last_name"],
            email=identity["email"],
            phone=identity["phone"],
        )
    row.enrolment = beneficiary_enrol(
        funder=funder, beneficiary=row.beneficiary, reference=identity["reference"]
    )
    facts_changed = row.is_new or any(name != "reference" for name in row.changes)
    if facts_changed:
        profile_save(
            enrolment=row.enrolment,
            data=row.profile_data(_profile_of(row.enrolment)),
            legal_basis=profile_import.legal_basis,
            by=profile_import.created_by,
            reevaluate=False,
        )
    return facts_changed
