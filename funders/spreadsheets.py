"""Reading the spreadsheets a funder's staff send (CSV or XLSX), shared by the allocation import
(funders/imports.py) and the beneficiary data import (funders/profile_imports.py).

Reading is django-import-export's: its formats turn CSV and XLSX into a tablib dataset, and its
widgets (below) turn each cell into a value or a `CellError`. A whole file that cannot be used
raises `SpreadsheetFileError`, whose message the upload form shows. A row's problems are kept as
stable codes with their parameters (`{"field", "code", "params"}`, see `row_error`) and put into
words only when a page shows them, in the reader's language (`error_text`).

The steps around the rows are shared too (`ImportSteps`, the end of this module): storing a file,
checking it (at once or in a task), confirming it, applying it in one transaction and recording
how that ended. What a row does is each import's own, plugged into those steps."""

import hashlib
import logging
import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

import tablib
from celery import Task
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from import_export import widgets
from import_export.formats import base_formats
from phonenumber_field.phonenumber import to_python as phone_to_python

from core.errors import DomainError, InvalidState
from core.replica import replica_reads
from core.validators import email_canonical, validate_french_postcode
from funders.models import Enrolment, Funder, SpreadsheetImport
from wallet.models import Beneficiary

logger = logging.getLogger(__name__)

SYNC_CHECK_MAX_ROWS = 200  # checked during the upload request; larger files go to a task
PROGRESS_EVERY = 50  # rows between two writes of `processed_rows`
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ROWS = 5000  # applied in one transaction: beyond, split the file

Status = SpreadsheetImport.Status


class SpreadsheetFileError(DomainError):
    """The file as a whole cannot be used."""

    code = "import_file_invalid"
    default_message = _("This file cannot be read.")

    def __init__(self, message=None, **details):
        super().__init__(message, field="file", **details)


# --- the columns ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str  # as in the English template and in the report
    french: str  # as in the French template
    label: str
    help: str
    required: bool = False
    aliases: tuple[str, ...] = ()

    @property
    def accepted(self) -> tuple[str, ...]:
        return (self.name, self.french, *self.aliases)


def header_key(header) -> str:
    # "Numéro dossier", "numero_dossier" and "NUMERO-DOSSIER" name the same column.
    text = unicodedata.normalize("NFKD", str(header or "")).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def map_headers(
    headers: Iterable, *, known: Mapping[str, str], labels: Mapping[str, str]
) -> tuple[dict[int, str], list[str]]:
    """Each column's name, by its position (`known`: header key → column name), and the titles
    of the columns that are not known. A column given twice is refused; untitled ones are
    ignored."""
    found: dict[int, str] = {}
    unknown = []
    for index, header in enumerate(headers or ()):
        key = header_key(header)
        if not key:
            continue
        name = known.get(key)
        if name is None:
            unknown.append(str(header))
        elif name in found.values():
            raise SpreadsheetFileError(
                _("The column “%(column)s” appears twice.") % {"column": labels[name]}
            )
        else:
            found[index] = name
    return found, unknown


# --- cells ---------------------------------------------------------------------------------------


class CellError(ValueError):
    """A cell that cannot be read; `code` names the problem (see ROW_MESSAGES)."""

    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code = code
        self.params = params


def spreadsheet_number(value):
    # A spreadsheet turns "12345" into the number 12345.0, and a text column must read it back.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class TextWidget(widgets.CharWidget):
    def __init__(self, max_length: int):
        super().__init__()
        self.max_length = max_length

    def clean(self, value, row=None, **kwargs):
        text = super().clean(spreadsheet_number(value), row, **kwargs).strip()
        if len(text) > self.max_length:
            raise CellError("too_long", max=self.max_length)
        return text


class EmailWidget(TextWidget):
    """An address in its canonical form (email_canonical), as people are stored and matched."""

    def clean(self, value, row=None, **kwargs):
        text = super().clean(value, row, **kwargs)
        if not text:
            return ""
        try:
            return email_canonical(text)
        except ValidationError as error:
            raise CellError(error.code, value=text) from None


class PhoneWidget(TextWidget):
    def clean(self, value, row=None, **kwargs):
        text = super().clean(value, row, **kwargs)
        if not text:
            return ""
        number = phone_to_python(text, region="FR")
        if not number.is_valid():
            raise CellError("invalid_phone", value=text)
        return number.as_e164


class PostcodeWidget(TextWidget):
    def clean(self, value, row=None, **kwargs):
        # A spreadsheet drops the leading zero of 01000 when it reads it as a number.
        if isinstance(spreadsheet_number(value), int):
            value = str(spreadsheet_number(value)).zfill(5)
        text = super().clean(value, row, **kwargs)
        if text:
            try:
                validate_french_postcode(text)
            except ValidationError:
                raise CellError("invalid_postcode", value=text) from None
        return text


class DayWidget(widgets.DateWidget):
    FORMATS = ("%Y-%m-%d", "%d/%m/%Y")

    def __init__(self):
        super().__init__()
        self.formats = self.FORMATS

    def clean(self, value, row=None, **kwargs):
        if isinstance(value, datetime):  # a date cell of a spreadsheet
            return value.date()
        if isinstance(value, str):
            value = value.strip()
        try:
            return super().clean(value, row, **kwargs)
        except ValueError:
            raise CellError("invalid_date", value=str(value)) from None


class WholeNumberWidget(widgets.Widget):
    """A whole number between `minimum` and `maximum` (both included): "3", 3 or a number cell
    3.0. Empty: None."""

    def __init__(self, *, minimum: int, maximum: int):
        super().__init__()
        self.minimum, self.maximum = minimum, maximum

    def clean(self, value, row=None, **kwargs):
        value = spreadsheet_number(value)
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            return None
        if isinstance(value, bool) or not re.fullmatch(r"[+-]?\d{1,9}", str(value)):
            raise CellError("not_a_whole_number", value=str(value))
        number = int(value)
        if not self.minimum <= number <= self.maximum:
            raise CellError("out_of_range", value=number, min=self.minimum, max=self.maximum)
        return number


# --- reading a file ------------------------------------------------------------------------------


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        # What a French spreadsheet program writes when it saves "CSV" on Windows.
        return content.decode("cp1252")
    except UnicodeDecodeError:
        raise SpreadsheetFileError(
            _("The file's text encoding is unknown. Save it as CSV UTF-8, or as .xlsx.")
        ) from None


def _delimiter(text: str) -> str:
    # French spreadsheet programs separate CSV columns with ";" (the comma is the decimal mark).
    header = text.split("\n", 1)[0]
    return max((";", ",", "\t"), key=header.count)


def read_dataset(content: bytes, filename: str) -> tablib.Dataset:
    """The file's cells: an .xlsx (recognised by its content) or a .csv in UTF-8 or Windows-1252,
    its columns separated by ";", "," or tabs."""
    unreadable = SpreadsheetFileError(
        _("This file cannot be read. Save it as .xlsx or as CSV, then send it again.")
    )
    is_zip = content.startswith(b"PK\x03\x04")  # an .xlsx is a zip archive
    if not is_zip and not filename.lower().endswith(".csv"):
        raise unreadable
    try:
        if is_zip:
            return base_formats.XLSX().create_dataset(content)
        text = _decode(content)
        return base_formats.CSV().create_dataset(text, delimiter=_delimiter(text))
    except SpreadsheetFileError:
        raise
    except tablib.InvalidDimensions:
        raise SpreadsheetFileError(
            _(
                "Some lines have more cells than there are column titles. If amounts are "
                "written with a comma, separate the columns with semicolons (;)."
            )
        ) from None
    except Exception as exc:
        # Any file can be sent, and spreadsheet readers fail in many ways on a broken one:
        # whatever the reason, the person is told the file cannot be read, never shown a 500.
        logger.info("unreadable spreadsheet %r: %r", filename, exc)
        raise unreadable from None


def is_blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


@dataclass(frozen=True)
class FileRow:
    number: int  # the line in the spreadsheet; the column titles are line 1
    cells: dict


def read_table(
    *,
    content: bytes,
    filename: str,
    columns: Callable[[list], dict[int, str]],
    max_rows: int = MAX_ROWS,
) -> list[FileRow]:
    """The file's rows, each a dict of its cells by column name (`columns` names the columns
    from the headers, or raises SpreadsheetFileError). Empty lines are skipped; the others keep
    their line number (a CSV reader drops blank lines, so in a CSV with blank lines the numbers
    count the lines that have text)."""
    if len(content) > MAX_FILE_BYTES:
        raise SpreadsheetFileError(_("The file is larger than 5 MB: split it into several files."))
    dataset = read_dataset(content, filename)
    found = columns(dataset.headers)
    rows = []
    for number, values in enumerate(dataset, start=2):
        cells = {name: values[index] for index, name in found.items()}
        if not all(is_blank(value) for value in cells.values()):
            rows.append(FileRow(number, cells))
    if not rows:
        raise SpreadsheetFileError(_("The file has no rows under its column titles."))
    if len(rows) > max_rows:
        raise SpreadsheetFileError(
            _("The file has %(count)s rows; at most %(max)s are accepted: split it.")
            % {"count": len(rows), "max": max_rows}
        )
    return rows


# --- a row's problems ----------------------------------------------------------------------------

# The problems both imports can find; each import adds its own.
ROW_MESSAGES = {
    "required": _("This is required."),
    "too_long": _("At most %(max)s characters."),
    "invalid_email": _("“%(value)s” is not an email address."),
    "non_ascii_email": _(
        "“%(value)s”: the part of an email address before the @ can only have letters without "
        "accents, digits and signs such as . - _ +."
    ),
    "invalid_phone": _("“%(value)s” is not a phone number."),
    "invalid_postcode": _("“%(value)s” is not a French postcode (5 digits)."),
    "invalid_date": _("“%(value)s” is not a date. Write it as 2026-12-01 or 01/12/2026."),
    "ambiguous_contact": _(
        "Several people you already help have this email address or phone number: add their "
        "file number to say which one."
    ),
    "reference_mismatch": _(
        "This person is already known to you under another file number: %(reference)s."
    ),
    "duplicate_in_file": _(
        "Same person as on row %(row)s: one person can appear only once in a file."
    ),
}


def row_error(field_name: str | None, code: str, **params) -> dict:
    return {"field": field_name, "code": code, "params": params}


def error_text(error: dict, *, messages: Mapping[str, str], labels: Mapping[str, str]) -> str:
    """One problem of a row in plain words, with the column it is about."""
    text = str(messages[error["code"]]) % error["params"]
    if error["field"]:
        label = labels.get(error["field"], error["field"])
        return f"{str(label)[:1].upper()}{str(label)[1:]}: {text}"
    return text


# --- who a row is about --------------------------------------------------------------------------


def match_beneficiary(
    funder: Funder, *, reference: str, email: str, phone: str
) -> tuple[Beneficiary | None, list[dict]]:
    """The funder's beneficiary a row is about: by file number, else by email (canonical, see
    EmailWidget) or phone among the people enrolled with this funder (never another funder's).
    None: nobody known."""
    if reference:
        enrolment = (
            Enrolment.objects.filter(funder=funder, reference=reference)
            .select_related("beneficiary")
            .first()
        )
        if enrolment is not None:
            return enrolment.beneficiary, []
    contact = Q()
    if email:
        # "=": `email` is canonical (EmailWidget), as stored. iexact's UPPER() would let a
        # look-alike address (gmail.com with a dotless i, U+0131) match on PostgreSQL.
        contact |= Q(email=email)
    if phone:
        contact |= Q(phone=phone)
    if not contact:
        return None, []
    found = list(
        Beneficiary.objects.filter(contact, pk__in=funder.enrolments.values("beneficiary"))[:2]
    )
    if len(found) > 1:
        return None, [row_error(None, "ambiguous_contact")]
    if not found:
        return None, []
    if reference:
        known = Enrolment.objects.get(funder=funder, beneficiary=found[0]).reference
        if known and known != reference:
            return None, [row_error("reference", "reference_mismatch", reference=known)]
    return found[0], []


def person_duplicate_error(
    *,
    number: int,
    reference: str,
    email: str,
    phone: str,
    beneficiary: Beneficiary | None,
    seen: dict[tuple, int],
) -> dict | None:
    """The error of a row naming a person an earlier row named: by file number, email, phone,
    or as the same known beneficiary (see duplicate_error)."""
    return duplicate_error(
        number=number,
        identities=[
            ("reference", reference),
            ("email", email),  # canonical (EmailWidget)
            ("phone", phone),
            (None, beneficiary.pk if beneficiary else None),
        ],
        seen=seen,
    )


def duplicate_error(
    *, number: int, identities: Iterable[tuple[str | None, object]], seen: dict[tuple, int]
) -> dict | None:
    """The error of a row naming a person an earlier row named (by any of `identities`: pairs
    of the column and its value, empty values ignored), or None. Records this row's identities
    in `seen`."""
    identities = [identity for identity in identities if identity[1]]
    error = None
    for identity in identities:
        if identity in seen:
            error = row_error(identity[0], "duplicate_in_file", row=seen[identity])
            break
    for identity in identities:
        seen.setdefault(identity, number)
    return error


# --- the steps of an import ----------------------------------------------------------------------


class ChangedSinceCheck(Exception):
    """Raised inside an apply's transaction (to undo it) when rows no longer pass the check."""

    def __init__(self, rows: list):
        self.rows = rows


class ImportSteps(ABC):
    """The steps of an import, the same for both (AllocationImport, ProfileImport): store an
    uploaded file and check it (a dry run, at once or in a task), confirm it, then apply it in
    one transaction, all rows or none, or record why it was refused. What a row does is each
    import's own: a subclass plugs it in through the abstract methods.

    A row, as `evaluate` gives it, has `errors` (empty when it is valid) and `report()` (its
    entry in the import's report)."""

    model: type[SpreadsheetImport]
    related: tuple[str, ...]  # the owner a check reads with the import (never empty: see check)
    check_task: Task  # checks a large file: calls `check`
    apply_task: Task  # applies a confirmed file: calls `apply`
    # Why an apply was refused, each message saying what was not done ("Nothing was written.").
    changed_message: str  # rows no longer pass the check
    refused_message: str  # a domain error's "%(reason)s"
    race_message: str  # a record written at the same moment by someone else

    # --- what each import does -------------------------------------------------------------------

    @abstractmethod
    def read_rows(self, spreadsheet_import: SpreadsheetImport) -> list[FileRow]:
        """The rows of the import's file; SpreadsheetFileError when the file as a whole cannot
        be used."""

    @abstractmethod
    def evaluate(
        self,
        spreadsheet_import: SpreadsheetImport,
        file_rows: list[FileRow],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> list:
        """What each row would do, or what is wrong with it. Reads only. `progress`: to call
        every PROGRESS_EVERY rows with the number of rows done."""

    def check_outcome(self, spreadsheet_import: SpreadsheetImport, rows: list) -> dict:
        """What a check records on the import beside the report: `error`, about the file as a
        whole ("": none), and any field of the import's own."""
        return {"error": ""}

    @abstractmethod
    def lock_owner(self, spreadsheet_import: SpreadsheetImport) -> None:
        """Lock, for the apply's transaction, the row the import belongs to, and put it on the
        import: two imports of one owner then apply one after the other, and the second is
        evaluated against what the first wrote."""

    def as_checked(self, spreadsheet_import: SpreadsheetImport, rows: list) -> bool:
        """Whether the rows, evaluated again in the apply's transaction, still pass the check."""
        return not any(row.errors for row in rows)

    @abstractmethod
    def write(self, spreadsheet_import: SpreadsheetImport, rows: list) -> tuple[str, ...]:
        """Apply every row, inside the apply's transaction. Returns the names of the other
        fields of the import it changed, saved with its status."""

    def refusal(self, spreadsheet_import: SpreadsheetImport, exc: DomainError) -> str:
        """The error recorded when a domain error undid the apply."""
        return self.refused_message % {"reason": exc.message}

    # --- the steps -------------------------------------------------------------------------------

    def create(
        self, *, filename: str, content: bytes, total_rows: int, by, **owner
    ) -> SpreadsheetImport:
        """Store an uploaded file and check it: at once when it is small, else in a task (the
        page shows the progress). `owner`: the import's own fields (its program; its funder and
        legal basis)."""
        spreadsheet_import = self.model.objects.create(
            **owner,
            filename=filename[:255],
            content=content,
            digest=hashlib.sha256(content).hexdigest(),
            status=Status.CHECKING,
            total_rows=total_rows,
            created_by=by,
        )
        return self._check_start(spreadsheet_import)

    def recheck(self, spreadsheet_import: SpreadsheetImport) -> SpreadsheetImport:
        """Check a checked, invalid or failed import again; InvalidState when it is being
        checked or applied, or was applied."""
        again = self.model.objects.filter(
            pk=spreadsheet_import.pk, status__in=[Status.CHECKED, Status.INVALID, Status.FAILED]
        ).update(status=Status.CHECKING, processed_rows=0, error="")
        if not again:
            raise InvalidState(
                message=gettext("This file is being checked or applied, or was applied already."),
                field="status",
            )
        spreadsheet_import.refresh_from_db()
        return self._check_start(spreadsheet_import)

    def _check_start(self, spreadsheet_import: SpreadsheetImport) -> SpreadsheetImport:
        if spreadsheet_import.total_rows <= SYNC_CHECK_MAX_ROWS:
            return self.check(spreadsheet_import)
        # The task reads the import: it is queued once the row is committed.
        transaction.on_commit(lambda: self.check_task.delay(spreadsheet_import.pk))
        return spreadsheet_import

    def check(self, spreadsheet_import: SpreadsheetImport) -> SpreadsheetImport:
        """The dry run: each row's result in the report, checked or with errors. Safe to run
        twice; does nothing unless the import is being checked."""
        pk = spreadsheet_import.pk
        # `related` is never empty: select_related() with no names would follow every relation.
        spreadsheet_import = self.model.objects.select_related(*self.related).get(pk=pk)
        if spreadsheet_import.status != Status.CHECKING:
            return spreadsheet_import
        try:
            file_rows = self.read_rows(spreadsheet_import)
        except SpreadsheetFileError as exc:
            end = {"status": Status.INVALID, "error": str(exc.message), "report": []}
        else:
            # A dry run may read a moment-old copy (the read replica when there is one): the
            # apply evaluates every row again on the primary and stops if one changed.
            with replica_reads():
                rows = self.evaluate(spreadsheet_import, file_rows, progress=self._progress(pk))
            outcome = self.check_outcome(spreadsheet_import, rows)
            valid = not outcome["error"] and not any(row.errors for row in rows)
            end = {
                "status": Status.CHECKED if valid else Status.INVALID,
                "total_rows": len(rows),
                "processed_rows": len(rows),
                "report": [row.report() for row in rows],
                **outcome,
            }
        self.model.objects.filter(pk=pk, status=Status.CHECKING).update(**end)
        spreadsheet_import.refresh_from_db()
        return spreadsheet_import

    def _progress(self, pk: int) -> Callable[[int], None]:
        def progress(done: int) -> None:
            # Outside any transaction: each write is committed, so the progress page sees it.
            # Named, not routed: this write changes nothing the check reads, so it must not
            # send the check's next reads to the primary as a routed write would.
            self.model.objects.using(DEFAULT_DB_ALIAS).filter(pk=pk).update(processed_rows=done)

        return progress

    def confirm(self, spreadsheet_import: SpreadsheetImport) -> SpreadsheetImport:
        """Start applying a checked file. The status changes to "being applied" at once (so a
        second click does nothing and the page shows it); the apply's task is queued once that
        is committed."""
        with transaction.atomic():
            started = self.model.objects.filter(
                pk=spreadsheet_import.pk, status=Status.CHECKED
            ).update(status=Status.APPLYING, processed_rows=0, error="")
            if not started:
                raise InvalidState(
                    message=gettext("Only a checked file without errors can be applied."),
                    field="status",
                )
            transaction.on_commit(lambda: self.apply_task.delay(spreadsheet_import.pk))
        spreadsheet_import.refresh_from_db()
        return spreadsheet_import

    def apply(self, spreadsheet_import: SpreadsheetImport) -> SpreadsheetImport:
        """Apply every row of a confirmed file, in one transaction: all rows or none.

        Progress: what the transaction writes is invisible to other connections until it
        commits, so a row count written along the way would never be seen (and a second
        connection cannot write it beside the transaction on SQLite, whose writer holds the
        database). The "being applied" status is committed before (confirm), and
        `processed_rows` jumps to the total at the end; the progress page says so.

        Safe to run twice: the import's row is locked and only an import being applied
        proceeds. The owner's row is locked too (lock_owner)."""
        pk = spreadsheet_import.pk
        try:
            with transaction.atomic():
                spreadsheet_import = (
                    self.model.objects.select_for_update(of=("self",)).filter(pk=pk).first()
                )
                if spreadsheet_import is None or spreadsheet_import.status != Status.APPLYING:
                    return spreadsheet_import
                self.lock_owner(spreadsheet_import)
                rows = self.evaluate(spreadsheet_import, self.read_rows(spreadsheet_import))
                if not self.as_checked(spreadsheet_import, rows):
                    raise ChangedSinceCheck(rows)
                also = self.write(spreadsheet_import, rows)
                spreadsheet_import.status = Status.APPLIED
                spreadsheet_import.applied_at = timezone.now()
                spreadsheet_import.processed_rows = len(rows)
                spreadsheet_import.report = [row.report() for row in rows]
                spreadsheet_import.save(
                    update_fields=["status", "applied_at", "processed_rows", "report", *also]
                )
                return spreadsheet_import
        except ChangedSinceCheck as exc:
            return self._refused(
                pk,
                status=Status.INVALID,
                report=[row.report() for row in exc.rows],
                error=str(self.changed_message),
            )
        except DomainError as exc:
            # A file that can no longer be read (the criteria it needs changed) has errors;
            # anything else refused failed.
            invalid = isinstance(exc, SpreadsheetFileError)
            return self._refused(
                pk,
                status=Status.INVALID if invalid else Status.FAILED,
                error=self.refusal(spreadsheet_import, exc),
            )
        except (IntegrityError, ValidationError):
            # A record this file creates (a person, a file number, a grant) was written at the
            # same moment by someone else: the transaction is undone, and a new check sees it.
            return self._refused(pk, status=Status.FAILED, error=str(self.race_message))

    def _refused(self, pk: int, **end) -> SpreadsheetImport:
        """The end of an apply whose transaction was undone: its status and error."""
        self.model.objects.filter(pk=pk, status=Status.APPLYING).update(**end)
        return self.model.objects.get(pk=pk)
