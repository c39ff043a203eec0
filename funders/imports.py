"""Allocations granted from a spreadsheet (CSV or XLSX), in two steps.

The **check** (a dry run) reads every row and says what applying it would do (grant to a new
beneficiary, or to one the funder already knows) or what is wrong with it, and compares the
file's total with what the program has left to allocate. It writes nothing to wallets or to the
ledger: only its report, on the AllocationImport.

The **apply** grants every row in one transaction, all or nothing, through the same services
as a grant made by hand. Each row's idempotency key is `import:{program}:{digest}:{row}`, so
the same file applied twice (even uploaded again as a new import) grants once.

Reading is funders/spreadsheets.py's (shared with the beneficiary data import): django-import-
export's formats turn CSV and XLSX into a tablib dataset, and the fields and widgets of
`AllocationRowResource` turn each cell into a value. Problems are kept as stable codes with their
parameters (`{"field", "code", "params"}`), and put into words only when a page shows them, in
the reader's language."""

import re
from dataclasses import dataclass, field
from datetime import date, datetime

import tablib
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources, widgets

from core import after_commit
from core.errors import DomainError, InsufficientFunds, InvalidState
from core.money import euros_to_cents, format_money
from core.time import end_of_day, start_of_day
from engine import geo
from funders import tasks
from funders.models import Allocation, AllocationImport, Funder, Program
from funders.selectors import already_holds_message, program_holders
from funders.services import allocation_create, beneficiary_enrol
from funders.spreadsheets import (
    MAX_ROWS,
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
    error_text,
    map_headers,
    match_beneficiary,
    person_duplicate_error,
    read_table,
    row_error,
    spreadsheet_number,
)
from funders.spreadsheets import ROW_MESSAGES as SHARED_ROW_MESSAGES
from ledger.models import Account
from wallet.models import Beneficiary
from wallet.services import beneficiary_create

Status = AllocationImport.Status


# The file as a whole cannot be read as an allocation file.
ImportFileError = SpreadsheetFileError


# --- the columns ---------------------------------------------------------------------------------


COLUMNS = (
    Column(
        "reference",
        "numero_dossier",
        _("file number"),
        _("Your own number for this person. Used first to recognise someone you already help."),
        aliases=("numero_de_dossier", "dossier"),
    ),
    Column("first_name", "prenom", _("first name"), _("Required."), required=True),
    Column("last_name", "nom", _("last name"), _("Required."), required=True),
    Column(
        "email",
        "email",
        _("email"),
        _("An email address or a mobile phone number is required, to tell the person."),
        aliases=("courriel", "e_mail", "mail"),
    ),
    Column(
        "phone", "telephone", _("mobile phone"), _("Such as 06 12 34 56 78."), aliases=("mobile",)
    ),
    Column("postcode", "code_postal", _("postcode"), _("5 digits. Optional.")),
    Column(
        "amount",
        "montant",
        _("amount"),
        _("In euros, more than 0, at most 2 decimals: 50, 50,00 or 50.5. Required."),
        required=True,
    ),
    Column(
        "valid_from",
        "debut",
        _("first day"),
        _(
            "The first day the aid can be used (from midnight, Paris time): 2026-12-01 or "
            "01/12/2026. Required."
        ),
        required=True,
    ),
    Column(
        "valid_until",
        "fin",
        _("last day"),
        _(
            "The last day the aid can be used, included: it stops at midnight at the end of that "
            "day, Paris time. Empty: no end."
        ),
    ),
    Column(
        "departements",
        "departements",
        _("départements"),
        _(
            'Optional. Département numbers, separated by commas ("38, 73"): the aid can be spent '
            "only there, instead of the program's départements."
        ),
        aliases=("departement",),
    ),
    Column(
        "per_payment_limit",
        "plafond_par_paiement",
        _("limit per payment"),
        _(
            "Optional. In euros: the most one payment can take from this aid, instead of the "
            "program's limit."
        ),
    ),
)
COLUMN_LABELS = {column.name: column.label for column in COLUMNS}
_COLUMN_BY_HEADER = {alias: column.name for column in COLUMNS for alias in column.accepted}


# euros_to_cents's error codes, as the import's report names them.
_AMOUNT_ERRORS = {
    "invalid_amount": "invalid_amount",
    "too_many_decimals": "amount_too_precise",
    "not_positive": "amount_not_positive",
    "too_large": "amount_too_large",
}


class EurosWidget(widgets.NumberWidget):
    """Euros as people type them ("50", "50,00", "50.5", "1 234,50 €") to cents, exactly."""

    def clean(self, value, row=None, **kwargs):
        if self.is_empty(value):
            return None
        # A spreadsheet's number cell: repr() is the shortest text giving back this float,
        # which is what the cell showed.
        text = repr(value) if isinstance(value, float) else str(value)
        try:
            return euros_to_cents(text)
        except ValidationError as error:
            raise CellError(_AMOUNT_ERRORS[error.code], value=str(value)) from None


class DepartementsWidget(widgets.Widget):
    def clean(self, value, row=None, **kwargs):
        value = spreadsheet_number(value)
        if value is None:
            return None
        codes = [code for code in re.split(r"[\s,;]+", str(value).strip().upper()) if code]
        codes = [code.zfill(2) if code.isdigit() else code for code in codes]
        unknown = [code for code in codes if code not in geo.TERRITORY_NAMES]
        if unknown:
            raise CellError("unknown_departement", value=", ".join(unknown))
        return list(dict.fromkeys(codes)) or None


@dataclass
class RowDraft:
    """One row's values, as the widgets read them."""

    reference: str = ""
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    postcode: str = ""
    amount: int | None = None
    valid_from: date | None = None
    valid_until: date | None = None
    departements: list[str] | None = None
    per_payment_limit: int | None = None


class AllocationRowResource(resources.Resource):
    """The columns of an allocation file. Rows become allocations through the services (see
    allocation_import_apply), never through import_export's save_instance: a grant moves money."""

    reference = fields.Field(attribute="reference", widget=TextWidget(max_length=64))
    first_name = fields.Field(attribute="first_name", widget=TextWidget(max_length=100))
    last_name = fields.Field(attribute="last_name", widget=TextWidget(max_length=100))
    email = fields.Field(attribute="email", widget=EmailWidget(max_length=254))
    phone = fields.Field(attribute="phone", widget=PhoneWidget(max_length=32))
    postcode = fields.Field(attribute="postcode", widget=PostcodeWidget(max_length=5))
    amount = fields.Field(attribute="amount", widget=EurosWidget())
    valid_from = fields.Field(attribute="valid_from", widget=DayWidget())
    valid_until = fields.Field(attribute="valid_until", widget=DayWidget())
    departements = fields.Field(attribute="departements", widget=DepartementsWidget())
    per_payment_limit = fields.Field(attribute="per_payment_limit", widget=EurosWidget())

    def __init__(self, *, french_headers: bool = False):
        super().__init__()
        if french_headers:
            for column in COLUMNS:
                self.fields[column.name].column_name = column.french

    def clean_row(self, cells: dict) -> tuple[RowDraft, list[dict]]:
        """The row's values and the problems of its cells. Every cell is read, so the report
        lists all of a row's problems at once."""
        draft = RowDraft()
        errors = []
        for import_field in self.get_import_fields():
            try:
                self.import_field(import_field, draft, cells)
            except CellError as exc:
                errors.append(_error(import_field.attribute, exc.code, **exc.params))
        return draft, errors


def template_dataset(*, french_headers: bool) -> tablib.Dataset:
    """An empty allocation file: the headers, to fill in."""
    return AllocationRowResource(french_headers=french_headers).export([])


# --- reading a file ------------------------------------------------------------------------------


def _columns(headers) -> dict[int, str]:
    found, unknown = map_headers(headers, known=_COLUMN_BY_HEADER, labels=COLUMN_LABELS)
    if unknown:
        raise ImportFileError(
            _(
                "These columns are not known: %(unknown)s. Rename or remove them. The columns "
                "are: %(known)s."
            )
            % {
                "unknown": ", ".join(unknown),
                "known": ", ".join(column.name for column in COLUMNS),
            }
        )
    names = set(found.values())
    missing = [column for column in COLUMNS if column.required and column.name not in names]
    if missing:
        raise ImportFileError(
            _("These columns are missing: %(columns)s.")
            % {"columns": ", ".join(column.name for column in missing)}
        )
    if not {"email", "phone"} & names:
        raise ImportFileError(
            _("Add an “email” or a “phone” column: each person must be told about their aid.")
        )
    return found


def read_rows(*, content: bytes, filename: str) -> list[FileRow]:
    """The file's rows, or ImportFileError when the file as a whole cannot be used. Empty lines
    are skipped; the others keep their line number (a CSV reader drops blank lines, so in a
    CSV with blank lines the numbers count the lines that have text)."""
    return read_table(content=content, filename=filename, columns=_columns, max_rows=MAX_ROWS)


# --- checking rows -------------------------------------------------------------------------------

ROW_MESSAGES = {
    **SHARED_ROW_MESSAGES,
    "contact_missing": _(
        "Give an email address or a mobile phone number, so the person can be told about the aid."
    ),
    "invalid_amount": _("“%(value)s” is not an amount in euros, such as 50 or 50,00."),
    "amount_not_positive": _("The amount must be more than 0."),
    "amount_too_precise": _("An amount has at most 2 decimals (cents)."),
    "amount_too_large": _("This amount is too large."),
    "dates_reversed": _("The last day comes before the first day."),
    "already_ended": _("The last day is already over: the aid could never be used."),
    "unknown_departement": _(
        "Unknown département number: %(value)s. Write numbers such as 38, 2A or 974."
    ),
    "already_allocated": _("Already allocated: this same file was applied to this program before."),
}

_error = row_error


def error_message(error: dict) -> str:
    """One problem of a row in plain words, with the column it is about."""
    return error_text(error, messages=ROW_MESSAGES, labels=COLUMN_LABELS)


def row_key(*, program: Program, digest: str, number: int) -> str:
    return f"import:{program.pk}:{digest}:{number}"


@dataclass
class Row:
    number: int
    draft: RowDraft
    key: str
    errors: list[dict] = field(default_factory=list)
    rules: dict = field(default_factory=dict)  # the allocation's overrides of the program's
    beneficiary: Beneficiary | None = None
    is_new: bool = False  # no one known matched: applying creates the beneficiary
    already_allocated: bool = False
    # The person already holds the program's aid (granted otherwise than by this file): the
    # dry run says so, "Already holds this aid (150,00 € until 30/09/2027)", and the apply
    # skips the row rather than grant it twice.
    already_holds: str = ""
    allocation: Allocation | None = None

    def report(self) -> dict:
        draft = self.draft
        if self.errors:
            result = "invalid"
        elif self.already_allocated:
            result = "already_allocated"
        elif self.already_holds:
            result = "already_holds"
        else:
            result = "new" if self.is_new else "existing"
        return {
            "row": self.number,
            "name": f"{draft.first_name} {draft.last_name}".strip(),
            "reference": draft.reference,
            "amount": draft.amount,
            "valid_from": draft.valid_from.isoformat() if draft.valid_from else None,
            "valid_until": draft.valid_until.isoformat() if draft.valid_until else None,
            "result": result,
            "beneficiary_id": self.beneficiary.pk if self.beneficiary else None,
            "beneficiary_name": str(self.beneficiary) if self.beneficiary else "",
            "allocation_id": self.allocation.pk if self.allocation else None,
            "already_holds": self.already_holds,
            "errors": self.errors,
        }


def _rule_overrides(program: Program, draft: RowDraft) -> dict:
    # An allocation's rule section replaces the program's whole section (merge_rules): copy the
    # program's section and change only what the file sets.
    overrides = {}
    if draft.departements:
        zone = program.rules.get("zone") or {}
        overrides["zone"] = {**zone, "departements": draft.departements}
    if draft.per_payment_limit is not None:
        limits = program.rules.get("limits") or {}
        overrides["limits"] = {**limits, "per_payment": draft.per_payment_limit}
    return overrides


def _match(funder: Funder, draft: RowDraft) -> tuple[Beneficiary | None, list[dict]]:
    """The funder's beneficiary this row is about: by file number, else by email or phone among
    the people enrolled with this funder (never another funder's). None: a new person."""
    return match_beneficiary(
        funder, reference=draft.reference, email=draft.email, phone=draft.phone
    )


def _evaluate(*, program: Program, digest: str, rows: list[FileRow], progress=None) -> list[Row]:
    """What each row would do, or what is wrong with it. Reads only."""
    resource = AllocationRowResource()
    now = timezone.now()
    keys = {row.number: row_key(program=program, digest=digest, number=row.number) for row in rows}
    allocated = set(
        Allocation.objects.filter(idempotency_key__in=keys.values()).values_list(
            "idempotency_key", flat=True
        )
    )
    seen: dict[tuple, int] = {}
    results = []
    # A row without dates takes the program's default validity (its first day is today at
    # the earliest).
    default_start, default_end = program.default_validity()
    for position, file_row in enumerate(rows, start=1):
        draft, errors = resource.clean_row(file_row.cells)
        if draft.valid_from is None and not any(e["field"] == "valid_from" for e in errors):
            draft.valid_from = default_start
        if draft.valid_until is None and not any(e["field"] == "valid_until" for e in errors):
            draft.valid_until = default_end
        row = Row(number=file_row.number, draft=draft, key=keys[file_row.number], errors=errors)
        _check_values(row, now)
        row.rules = _rule_overrides(program, draft)
        if row.key in allocated:
            row.already_allocated = True
        elif not any(e["field"] in ("reference", "email", "phone") for e in row.errors):
            row.beneficiary, problems = _match(program.funder, draft)
            row.is_new = row.beneficiary is None
            row.errors += problems
            _check_duplicate(row, seen)
        results.append(row)
        if progress is not None and position % PROGRESS_EVERY == 0:
            progress(position)
    holders = program_holders(
        program=program,
        beneficiary_ids={row.beneficiary.pk for row in results if row.beneficiary is not None},
    )
    for row in results:
        holding = holders.get(row.beneficiary.pk) if row.beneficiary is not None else None
        if holding is not None and not row.already_allocated:
            row.already_holds = already_holds_message(holding)
    return results


def _check_values(row: Row, now: datetime) -> None:
    draft, failed = row.draft, {error["field"] for error in row.errors}
    for name in ("first_name", "last_name", "amount", "valid_from"):
        if name not in failed and getattr(draft, name) in (None, ""):
            row.errors.append(_error(name, "required"))
    if not draft.email and not draft.phone and not failed & {"email", "phone"}:
        row.errors.append(_error(None, "contact_missing"))
    if draft.valid_until is not None:
        if draft.valid_from is not None and draft.valid_until < draft.valid_from:
            row.errors.append(_error("valid_until", "dates_reversed"))
        elif end_of_day(draft.valid_until) <= now:
            row.errors.append(_error("valid_until", "already_ended"))


def _check_duplicate(row: Row, seen: dict[tuple, int]) -> None:
    draft = row.draft
    error = person_duplicate_error(
        number=row.number,
        reference=draft.reference,
        email=draft.email,
        phone=draft.phone,
        beneficiary=row.beneficiary,
        seen=seen,
    )
    if error is not None:
        row.errors.append(error)


def _available(program: Program) -> int:
    return Account.objects.get(pk=program.float_account_id).available


def _shortfall_message(*, needed: int, available: int, currency: str) -> str:
    return gettext(
        "This file needs %(needed)s but the program has only %(available)s left to allocate. "
        "Fund the program, then check the file again."
    ) % {"needed": format_money(needed, currency), "available": format_money(available, currency)}


# --- the steps -----------------------------------------------------------------------------------


class AllocationImportSteps(ImportSteps):
    model = AllocationImport
    related = ("program__funder",)
    check_task = tasks.allocation_import_check
    apply_task = tasks.allocation_import_apply
    changed_message = _("Some rows changed since the check (see below). Nothing was allocated.")
    refused_message = _("%(reason)s Nothing was allocated.")
    race_message = _(
        "Another change was made at the same moment. Nothing was allocated: check the file again."
    )

    def read_rows(self, allocation_import: AllocationImport) -> list[FileRow]:
        return read_rows(
            content=bytes(allocation_import.content), filename=allocation_import.filename
        )

    def evaluate(
        self, allocation_import: AllocationImport, file_rows, *, progress=None
    ) -> list[Row]:
        return _evaluate(
            program=allocation_import.program,
            digest=allocation_import.digest,
            rows=file_rows,
            progress=progress,
        )

    def check_outcome(self, allocation_import: AllocationImport, rows: list[Row]) -> dict:
        """The file's total against the program's money. Rows of this file granted before are
        errors for the check; the apply skips them."""
        program = allocation_import.program
        for row in rows:
            if row.already_allocated:
                row.errors.append(_error(None, "already_allocated"))
        needed = sum(row.draft.amount or 0 for row in rows if not _skipped(row, allocation_import))
        available = _available(program)
        error = ""
        if needed > available:
            error = _shortfall_message(
                needed=needed, available=available, currency=program.currency
            )
        return {"error": error, "total_amount": needed}

    def lock_owner(self, allocation_import: AllocationImport) -> None:
        # The program's row: the same file applied twice grants once, and the second apply
        # reports its rows as already allocated.
        allocation_import.program = Program.objects.select_for_update(of=("self",)).get(
            pk=allocation_import.program_id
        )

    def write(self, allocation_import: AllocationImport, rows: list[Row]) -> tuple[str, ...]:
        with after_commit.together():  # the grants' messages in batches, not a task each
            for row in rows:
                if not _skipped(row, allocation_import):
                    _grant(row, program=allocation_import.program, by=allocation_import.created_by)
        return ()

    def refusal(self, allocation_import: AllocationImport, exc: DomainError) -> str:
        if not isinstance(exc, InsufficientFunds):
            return super().refusal(allocation_import, exc)
        program = Program.objects.get(pk=allocation_import.program_id)
        shortfall = _shortfall_message(
            needed=allocation_import.total_amount,
            available=_available(program),
            currency=program.currency,
        )
        return gettext(
            "The program's money ran out while this file was applied. %(shortfall)s "
            "Nothing was allocated."
        ) % {"shortfall": shortfall}


_steps = AllocationImportSteps()


def _skipped(row: Row, allocation_import: AllocationImport) -> bool:
    """A row the apply does not grant: granted by this file before, or to a person already
    holding the aid unless the import grants them again on purpose."""
    return row.already_allocated or (
        bool(row.already_holds) and not allocation_import.grant_to_holders
    )


def allocation_import_create(
    *,
    program: Program,
    filename: str,
    content: bytes,
    by: AbstractBaseUser | None = None,
    grant_to_holders: bool = False,
) -> AllocationImport:
    """Store an uploaded file and check it: at once when it is small, else in a task (the page
    shows the progress). ImportFileError when the file cannot be used at all."""
    if not program.is_active:
        raise InvalidState(message=gettext("This program is closed."), field="program")
    rows = read_rows(content=content, filename=filename)
    return _steps.create(
        program=program,
        grant_to_holders=grant_to_holders,
        filename=filename,
        content=content,
        total_rows=len(rows),
        by=by,
    )


def allocation_import_recheck(*, allocation_import: AllocationImport) -> AllocationImport:
    """Check a file again, after the program was funded or a beneficiary's record was fixed."""
    return _steps.recheck(allocation_import)


def allocation_import_check(*, allocation_import: AllocationImport) -> AllocationImport:
    """The dry run: each row's result in the report, and the file's total against the program's
    money. Safe to run twice; does nothing unless the import is being checked."""
    return _steps.check(allocation_import)


def allocation_import_confirm(*, allocation_import: AllocationImport) -> AllocationImport:
    """Start applying a checked file (see ImportSteps.confirm)."""
    return _steps.confirm(allocation_import)


def allocation_import_apply(*, allocation_import: AllocationImport) -> AllocationImport:
    """Grant every row of a confirmed file, in one transaction: all rows or none (see
    ImportSteps.apply for the progress). The program's row is locked, so two imports of one
    program apply one after the other and the second finds the first one's grants: the same file
    applied twice grants once, and its rows are reported as already allocated."""
    return _steps.apply(allocation_import)


def _grant(row: Row, *, program: Program, by: AbstractBaseUser | None) -> None:
    draft = row.draft
    beneficiary = row.beneficiary or beneficiary_create(
        first_name=draft.first_name,
        last_name=draft.last_name,
        email=draft.email,
        phone=draft.phone,
        postcode=draft.postcode,
    )
    beneficiary_enrol(funder=program.funder, beneficiary=beneficiary, reference=draft.reference)
    row.beneficiary = beneficiary
    row.allocation = allocation_create(
        program=program,
        beneficiary=beneficiary,
        amount=draft.amount,
        valid_from=start_of_day(draft.valid_from),
        valid_until=end_of_day(draft.valid_until) if draft.valid_until else None,
        idempotency_key=row.key,
        rules=row.rules,
        by=by,
    )
