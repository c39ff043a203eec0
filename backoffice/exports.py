"""Files for a funder's accountants, CSV or XLSX: a program's allocations, the payments on its
pockets, the statement of its float account, and the decisions taken on a campaign's proposals.

Amounts appear twice: as a decimal string in the currency's unit ("12.50", never a float a
spreadsheet could round) and as an integer of minor units, the ledger's own figure. Times are
those of Europe/Paris."""

import csv
import io
import json
import tempfile
from datetime import datetime
from typing import BinaryIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.db import connections, router, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone, translation
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _
from import_export import resources, widgets
from import_export.fields import Field
from import_export.formats import base_formats
from tablib import Dataset

from core.money import MINOR_UNIT_EXPONENTS
from core.replica import replica_reads
from funders import eligibility, reports
from funders.models import Allocation, Campaign, Enrolment, Program, ProgramExport, Proposal
from ledger.models import Transfer
from wallet.models import Beneficiary, Pocket
from wallet.models.decisions import Decision, DecisionHold


def decimal_text(amount: int, currency: str) -> str:
    """Minor units as a decimal string in the currency's unit: 1250 EUR -> "12.50"."""
    exponent = MINOR_UNIT_EXPONENTS.get(currency, 2)
    units, minor = divmod(abs(amount), 10**exponent)
    sign = "-" if amount < 0 else ""
    return f"{sign}{units}.{minor:0{exponent}d}" if exponent else f"{sign}{units}"


class TextWidget(widgets.CharWidget):
    """Text people typed (names, references, reasons). A spreadsheet runs a cell starting with
    = + - @ as a formula, so such text is prefixed with an apostrophe, as OWASP advises."""

    def render(self, value, obj=None, **kwargs):
        text = super().render(value, **kwargs)
        return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _text(value: str) -> str:
    """TextWidget's rendering, for a dehydrate method's value (which skips its field's widget)."""
    return TextWidget().render(value)


class ParisTimeWidget(widgets.Widget):
    def render(self, value: datetime | None, obj=None, **kwargs):
        if value is None:
            return ""
        return timezone.localtime(value, reports.PARIS).strftime("%Y-%m-%d %H:%M")


class ParisIsoTimeWidget(widgets.Widget):
    """An instant as ISO 8601 in Paris time, with its offset: 2026-03-01T14:05:00+01:00."""

    def render(self, value: datetime | None, obj=None, **kwargs):
        if value is None:
            return ""
        return timezone.localtime(value, reports.PARIS).isoformat(timespec="seconds")


def _cents(attribute: str, column_name) -> Field:
    return Field(
        attribute=attribute,
        column_name=column_name,
        widget=widgets.IntegerWidget(coerce_to_string=False),
    )


_integer = _cents  # an id: a number in a spreadsheet too


class AllocationResource(resources.Resource):
    beneficiary = Field(attribute="beneficiary", column_name=_("beneficiary"), widget=TextWidget())
    file_reference = Field(
        attribute="file_reference", column_name=_("file number"), widget=TextWidget()
    )
    amount = Field(column_name=_("amount"))
    amount_cents = _cents("amount", _("amount (cents)"))
    currency = Field(attribute="currency", column_name=_("currency"))
    valid_from = Field(
        attribute="valid_from", column_name=_("valid from"), widget=ParisTimeWidget()
    )
    valid_until = Field(
        attribute="valid_until", column_name=_("valid until"), widget=ParisTimeWidget()
    )
    status = Field(column_name=_("status"))
    ended_at = Field(attribute="ended_at", column_name=_("ended at"), widget=ParisTimeWidget())
    end_reason = Field(attribute="end_reason", column_name=_("reason"), widget=TextWidget())
    created_by = Field(column_name=_("created by"), widget=TextWidget())

    def dehydrate_amount(self, allocation: Allocation) -> str:
        return decimal_text(allocation.amount, allocation.currency)

    def dehydrate_status(self, allocation: Allocation) -> str:
        return str(allocation.get_status_display())

    def dehydrate_created_by(self, allocation: Allocation) -> str:
        # A dehydrate method's value skips the field's widget: neutralised here.
        user = allocation.created_by
        return _text((user.get_full_name() or user.get_username()) if user else "")


def program_allocations(*, program: Program) -> QuerySet[Allocation]:
    """The program's allocations with the funder's file number of each beneficiary."""
    file_reference = Enrolment.objects.filter(
        funder=OuterRef("program__funder"), beneficiary=OuterRef("beneficiary")
    ).values("reference")[:1]
    return (
        Allocation.objects.filter(program=program.pk)
        .select_related("beneficiary", "created_by")
        .annotate(file_reference=Subquery(file_reference))
        .order_by("created_at", "pk")
    )


class PaymentResource(resources.Resource):
    reference = Field(attribute="reference", column_name=_("payment reference"))
    decided_at = Field(attribute="decided_at", column_name=_("date"), widget=ParisTimeWidget())
    merchant = Field(attribute="merchant", column_name=_("merchant"), widget=TextWidget())
    mcc = Field(attribute="mcc", column_name=_("merchant category code"))
    currency = Field(attribute="currency", column_name=_("currency"))
    amount = Field(column_name=_("amount asked"))
    amount_cents = _cents("amount", _("amount asked (cents)"))
    approved = Field(column_name=_("approved from this program"))
    approved_cents = _cents("approved", _("approved from this program (cents)"))
    captured = Field(column_name=_("captured"))
    captured_cents = _cents("captured", _("captured (cents)"))
    refunded = Field(column_name=_("refunded"))
    refunded_cents = _cents("refunded", _("refunded (cents)"))
    status = Field(column_name=_("status"))
    reason = Field(column_name=_("decline reason"))
    refused_by_program = Field(column_name=_("refused by this program's rules"))

    def dehydrate_amount(self, row: reports.PaymentRow) -> str:
        return decimal_text(row.amount, row.currency)

    def dehydrate_approved(self, row: reports.PaymentRow) -> str:
        return decimal_text(row.approved, row.currency)

    def dehydrate_captured(self, row: reports.PaymentRow) -> str:
        return decimal_text(row.captured, row.currency)

    def dehydrate_refunded(self, row: reports.PaymentRow) -> str:
        return decimal_text(row.refunded, row.currency)

    def dehydrate_status(self, row: reports.PaymentRow) -> str:
        return str(Decision.Status(row.status).label)

    def dehydrate_reason(self, row: reports.PaymentRow) -> str:
        return reports.reason_label(row.reason) if row.reason else ""

    def dehydrate_refused_by_program(self, row: reports.PaymentRow) -> str:
        return reports.reason_label(row.refused_by_program) if row.refused_by_program else ""


class StatementResource(resources.Resource):
    at = Field(attribute="at", column_name=_("date"), widget=ParisTimeWidget())
    transfer = Field(attribute="transfer", column_name=_("ledger transfer"))
    kind = Field(column_name=_("kind"))
    amount = Field(column_name=_("amount"))
    amount_cents = _cents("amount", _("amount (cents)"))
    balance = Field(column_name=_("balance"))
    balance_cents = _cents("balance", _("balance (cents)"))
    reference = Field(attribute="reference", column_name=_("reference"), widget=TextWidget())

    def __init__(self, *, currency: str):
        super().__init__()
        self.currency = currency

    def dehydrate_kind(self, row: reports.StatementRow) -> str:
        return str(Transfer.Kind(row.kind).label)

    def dehydrate_amount(self, row: reports.StatementRow) -> str:
        return decimal_text(row.amount, self.currency)

    def dehydrate_balance(self, row: reports.StatementRow) -> str:
        return decimal_text(row.balance, self.currency)


class RefusalResource(resources.Resource):
    dimension = Field(column_name=_("by"))
    label = Field(attribute="label", column_name=_("of"), widget=TextWidget())
    payments = Field(attribute="payments", column_name=_("payments refused"))
    amount = Field(column_name=_("amount refused"))
    amount_cents = _cents("amount", _("amount refused (cents)"))
    people = Field(attribute="people", column_name=_("people"))

    DIMENSIONS = {
        "reason": _("reason"),
        "shop": _("shop"),
        "category": _("kind of shop"),
        "commune": _("commune"),
    }

    def __init__(self, *, currency: str):
        super().__init__()
        self.currency = currency

    def dehydrate_dimension(self, line: reports.RefusalLine) -> str:
        return str(self.DIMENSIONS[line.dimension])

    def dehydrate_amount(self, line: reports.RefusalLine) -> str:
        return decimal_text(line.amount, self.currency)


def _refusals(program: Program, period: reports.Period) -> Dataset:
    by = reports.refusals_by(program=program, period=period)
    rows = [line for dimension in reports.REFUSAL_DIMENSIONS for line in by[dimension]]
    return RefusalResource(currency=program.currency).export(rows)


def _allocations(program: Program, period: reports.Period) -> Dataset:
    return AllocationResource().export(program_allocations(program=program))


def _payments(program: Program, period: reports.Period) -> Dataset:
    return PaymentResource().export(reports.program_payments(program=program, period=period))


def _statement(program: Program, period: reports.Period) -> Dataset:
    rows = reports.program_statement(program=program, period=period)
    return StatementResource(currency=program.currency).export(rows)


EXPORTS = {
    "allocations": _allocations,
    "payments": _payments,
    "statement": _statement,
    "refusals": _refusals,
}
KINDS = tuple(EXPORTS)
FORMATS = {"csv": base_formats.CSV(), "xlsx": base_formats.XLSX()}


def _text_sql(expression: str) -> str:
    """SQL of TextWidget.render: a spreadsheet formula's first character neutralised."""
    return (
        f"CASE WHEN left({expression}, 1) IN ('=', '+', '-', '@', E'\\t', E'\\r') "
        f"THEN '''' || {expression} ELSE {expression} END"
    )


def _paris_minute_sql(expression: str) -> str:
    """SQL of ParisTimeWidget.render."""
    return f"to_char({expression} AT TIME ZONE 'Europe/Paris', 'YYYY-MM-DD HH24:MI')"


def _unit_sql(exponent: str) -> str:
    """SQL of a currency's unit in minor units (100 for the euro), `exponent` the currency's."""
    return f"(10::numeric ^ {exponent})::bigint"


def _decimal_sql(amount: str, exponent: str, unit: str | None = None) -> str:
    """SQL of decimal_text(): minor units as a decimal string, `exponent` the currency's, `unit`
    its unit if the query has it already (_unit_sql otherwise)."""
    unit = unit or _unit_sql(exponent)
    return (
        f"CASE WHEN {exponent} = 0 THEN {amount}::text ELSE "
        f"CASE WHEN {amount} < 0 THEN '-' ELSE '' END || (abs({amount}) / {unit})::text || '.' "
        f"|| lpad((abs({amount}) %% {unit})::text, {exponent}, '0') END"
    )


def _allocations_copy_sql() -> str:
    """The allocations export as one query for COPY: the cells AllocationResource renders,
    each empty one as NULL (COPY quotes an empty string, Python's csv module does not).

    The rows are joined and sorted narrow, their cells rendered after the sort, each currency's
    exponent and unit looked up once a row: rendered below the sort, every row's text was
    sorted with it and the unit computed twice (numeric powers, four JSON lookups a row), 15 to
    30 % of the query's processor at 0.1."""
    user = get_user_model()._meta.db_table
    exponent = "coalesce((%(exponents)s::jsonb ->> a.currency)::int, 2)"
    created_by = "coalesce(nullif(btrim(u.first_name || ' ' || u.last_name), ''), u.username)"
    columns = [
        _text_sql("x.name"),
        _text_sql("x.reference"),
        _decimal_sql("x.amount", "x.exponent", "x.unit"),
        "x.amount::text",
        "x.currency",
        _paris_minute_sql("x.valid_from"),
        _paris_minute_sql("x.valid_until"),
        "%(statuses)s::jsonb ->> x.status",
        _paris_minute_sql("x.ended_at"),
        _text_sql("x.end_reason"),
        _text_sql("x.created_by"),
    ]
    select = ", ".join(f"nullif({column}, '')" for column in columns)
    return (
        f"SELECT {select} FROM (SELECT a.id, a.created_at, "
        "b.first_name || ' ' || b.last_name AS name, e.reference, a.amount, a.currency, "
        f"{exponent} AS exponent, {_unit_sql(exponent)} AS unit, a.valid_from, a.valid_until, "
        f"a.status, a.ended_at, a.end_reason, {created_by} AS created_by "
        f"FROM {Allocation._meta.db_table} a "
        f"JOIN {Program._meta.db_table} p ON p.id = a.program_id "
        f"JOIN {Beneficiary._meta.db_table} b ON b.id = a.beneficiary_id "
        f"LEFT JOIN {Enrolment._meta.db_table} e "
        "ON e.funder_id = p.funder_id AND e.beneficiary_id = a.beneficiary_id "
        f"LEFT JOIN {user} u ON u.id = a.created_by_id "
        # OFFSET 0 keeps the sorted rows a subquery of their own, rendered above it (pulled
        # up, the rendering would go below the sort again); the outer ORDER BY is its order,
        # which the planner keeps without sorting again.
        "WHERE a.program_id = %(program)s ORDER BY a.created_at, a.id OFFSET 0) x "
        "ORDER BY x.created_at, x.id"
    )


def _payments_copy_sql() -> str:
    """The payments export as one query for COPY: the rows of reports.program_payments() rendered as
    PaymentResource renders them, each empty cell as NULL. Each of the period's decisions reads
    its wallet's pockets of the program, and the verdicts of its trace (whether it asked one of
    them, and why the first that refused did); what those pockets approved, captured and
    refunded comes from one pass over its holds on them, not from its split."""
    pocket, allocation = Pocket._meta.db_table, Allocation._meta.db_table
    hold, transfer = DecisionHold._meta.db_table, Transfer._meta.db_table
    exponent = "coalesce((%(exponents)s::jsonb ->> d.currency)::int, 2)"
    columns = [
        "d.reference",
        _paris_minute_sql("d.decided_at"),
        _text_sql("coalesce(d.request -> 'merchant' ->> 'name', '')"),
        "coalesce(d.request -> 'merchant' ->> 'mcc', '')",
        "d.currency",
        _decimal_sql("d.amount", exponent),
        "d.amount::text",
        _decimal_sql("moved.approved", exponent),
        "moved.approved::text",
        _decimal_sql("moved.captured", exponent),
        "moved.captured::text",
        _decimal_sql("moved.refunded", exponent),
        "moved.refunded::text",
        "%(statuses)s::jsonb ->> d.status",
        "coalesce(%(reasons)s::jsonb ->> d.reason, d.reason)",
        "coalesce(%(reasons)s::jsonb ->> verdicts.refused, verdicts.refused)",
    ]
    select = ", ".join(f"nullif({column}, '')" for column in columns)
    return (
        f"SELECT {select} FROM (SELECT d.id, d.reference, d.decided_at, d.request, d.trace, "
        "d.currency, d.amount, d.status, d.reason, array_agg(p.id) AS pockets "
        f"FROM {Decision._meta.db_table} d JOIN {pocket} p ON p.wallet_id = d.wallet_id "
        f"JOIN {allocation} a ON a.id = p.allocation_id "
        "WHERE a.program_id = %(program)s "
        "AND d.decided_at >= %(since)s AND d.decided_at < %(until)s GROUP BY d.id) d "
        # Asked of one of the program's pockets; the first of them that refused, and why.
        "CROSS JOIN LATERAL (SELECT count(*) AS asked, (array_agg(v.value ->> 'reason' "
        "ORDER BY v.n) FILTER (WHERE NOT (v.value ->> 'eligible')::boolean))[1] AS refused "
        "FROM jsonb_array_elements(d.trace -> 'verdicts') WITH ORDINALITY v(value, n) "
        "WHERE (v.value ->> 'pocket_id')::bigint = ANY (d.pockets)) verdicts "
        # One pass over the decision's holds on those pockets. Its first hold on a pocket is
        # its split's part there (a partial reversal adds the hold that keeps the rest, for the
        # same pocket); a hold has one capture at most, which the refunds name.
        "CROSS JOIN LATERAL (SELECT "
        "coalesce(sum(h.amount) FILTER (WHERE h.first), 0)::bigint AS approved, "
        "coalesce(sum(c.amount), 0)::bigint AS captured, "
        "coalesce(sum(r.amount), 0)::bigint AS refunded "
        "FROM (SELECT h.hold_id, h.amount, h.id = min(h.id) OVER (PARTITION BY h.pocket_id) "
        f"AS first FROM {hold} h "
        "WHERE h.decision_id = d.id AND h.pocket_id = ANY (d.pockets)) h "
        f"LEFT JOIN {transfer} c ON c.pending_transfer_id = h.hold_id AND c.kind = %(capture)s "
        f"LEFT JOIN LATERAL (SELECT sum(r.amount) AS amount FROM {transfer} r "
        "WHERE r.refund_of_id = c.id AND r.kind = %(refund)s) r ON true) moved "
        "WHERE verdicts.asked > 0 "
        "ORDER BY d.decided_at, d.id"
    )


def copy_query(
    *, program: Program, kind: str, period: reports.Period
) -> tuple[str, dict, list[str]] | None:
    """(query, parameters, header) of an export COPY writes as CSV, None for the others
    (their resource writes them). The benchmark explains the same query."""
    params = {
        "exponents": json.dumps(MINOR_UNIT_EXPONENTS),
        "program": program.pk,
    }
    if kind == "allocations":
        params["statuses"] = json.dumps(
            {value: str(label) for value, label in Allocation.Status.choices}
        )
        return _allocations_copy_sql(), params, AllocationResource().get_export_headers()
    if kind == "payments":
        params |= {
            "statuses": json.dumps({value: str(label) for value, label in Decision.Status.choices}),
            "reasons": json.dumps(
                {code: str(label) for code, label in reports.REASON_LABELS.items()}
            ),
            "capture": Transfer.Kind.CAPTURE.value,
            "refund": Transfer.Kind.REFUND.value,
            "since": period.since,
            "until": period.until,
        }
        return _payments_copy_sql(), params, PaymentResource().get_export_headers()
    return None


def copy_csv(sql: str, params: dict, out: BinaryIO) -> None:
    """Writes the rows of `sql` as CSV through PostgreSQL's COPY (the benchmark writes the
    bare rows of its floor through it too)."""
    connection = connections[router.db_for_read(Allocation)]
    copy_sql = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)"
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        # A million rows sorted and hashed: in memory rather than spilled to disk.
        cursor.execute("SET LOCAL work_mem = '256MB'")
        # The query's cost is far above the JIT's thresholds, and compiling its many
        # expressions took more processor time than running them (one day's payments at a
        # million: 5.7 s of JIT for 1.6 s of execution).
        cursor.execute("SET LOCAL jit = off")
        with cursor.cursor.copy(copy_sql, params) as copy:
            # Each block is one row ending in "\n" (a cell's own line breaks are inside its
            # quotes): the lines end in "\r\n", as Python's csv module ends them.
            for row in copy:
                out.write(bytes(row[:-1]) + b"\r\n")


def _copied(program: Program, kind: str, period: reports.Period, out: BinaryIO) -> bool:
    """Writes a CSV export through PostgreSQL's COPY, the same bytes as its resource's file:
    a million rows in seconds, where the resource's objects took many minutes. False, nothing
    written, for an export COPY does not write or a database without COPY."""
    connection = connections[router.db_for_read(Allocation)]
    query = copy_query(program=program, kind=kind, period=period)
    if connection.vendor != "postgresql" or query is None:
        return False
    sql, params, headers = query
    header = io.StringIO()
    csv.writer(header).writerow(headers)
    out.write(("\ufeff" + header.getvalue()).encode())
    copy_csv(sql, params, out)
    return True


def program_export_write(
    *, program: Program, kind: str, file_format: str, period: reports.Period, out: BinaryIO
) -> tuple[str, str]:
    """Writes one export of a program into `out`; returns its (file name, content type).
    Payments and the statement cover `period`; allocations are all of the program's."""
    export_format = FORMATS[file_format]
    filename = (
        f"{slugify(program.name)}-{kind}-{timezone.localdate(timezone=reports.PARIS):%Y-%m-%d}"
        f".{export_format.get_extension()}"
    )
    content_type = export_format.get_content_type()
    if file_format == "csv" and _copied(program, kind, period, out):
        return filename, content_type
    content = export_format.export_data(EXPORTS[kind](program, period))
    if isinstance(content, str):
        # The byte order mark tells Excel the file is UTF-8: without it, accents are garbled.
        content = ("\ufeff" + content).encode()
    out.write(content)
    return filename, content_type


def program_export(
    *, program: Program, kind: str, file_format: str, period: reports.Period
) -> tuple[str, str, bytes]:
    """(file name, content type, content) of one export of a program (program_export_write)."""
    out = io.BytesIO()
    filename, content_type = program_export_write(
        program=program, kind=kind, file_format=file_format, period=period, out=out
    )
    return filename, content_type, out.getvalue()


def export_request(
    *, program: Program, kind: str, file_format: str, period: reports.Period, user
) -> ProgramExport:
    """Ask for one export of a program: recorded as being prepared, built by a task once the
    request commits (a million payments take longer than a page may)."""
    export = ProgramExport.objects.create(
        program=program,
        kind=kind,
        file_format=file_format,
        period_start=period.start,
        period_end=period.end,
        language=translation.get_language() or settings.LANGUAGE_CODE,
        requested_by=user,
    )
    from backoffice import tasks

    transaction.on_commit(lambda: tasks.program_export_build.delay(export.pk))
    return export


def export_build(*, export: ProgramExport) -> ProgramExport:
    """Build the file of an export into the file storage, through a temporary file (a
    million rows are not held in memory). Safe to run twice: a file made already is kept.
    A failure is recorded, for the page to say so, and raised."""
    if export.status == ProgramExport.Status.READY:
        return export
    period = reports.Period(start=export.period_start, end=export.period_end)
    with tempfile.TemporaryFile() as out:
        try:
            # The figures may be a moment old: from the read replica when there is one.
            with replica_reads(), translation.override(export.language):
                filename, content_type = program_export_write(
                    program=export.program,
                    kind=export.kind,
                    file_format=export.file_format,
                    period=period,
                    out=out,
                )
        except Exception:
            export.status = ProgramExport.Status.FAILED
            export.finished_at = timezone.now()
            export.save(update_fields=["status", "finished_at"])
            raise
        size = out.tell()
        out.seek(0)
        export.file.save(filename, File(out), save=False)
    export.filename, export.content_type, export.size = filename, content_type, size
    export.status = ProgramExport.Status.READY
    export.finished_at = timezone.now()
    export.save()
    return export


# --- the decisions of a campaign -----------------------------------------------------------------


class DecisionResource(resources.Resource):
    """One row per proposal of a campaign: who, why (each criterion met, in words), how much,
    and what was decided, by whom, when and why. What a funder needs to explain any grant or
    refusal."""

    proposal = _integer("pk", _("proposal"))
    campaign = Field(attribute="campaign__name", column_name=_("campaign"), widget=TextWidget())
    program = Field(
        attribute="campaign__program__name", column_name=_("program"), widget=TextWidget()
    )
    file_reference = Field(
        attribute="file_reference", column_name=_("file number"), widget=TextWidget()
    )
    first_name = Field(
        attribute="beneficiary__first_name", column_name=_("first name"), widget=TextWidget()
    )
    last_name = Field(
        attribute="beneficiary__last_name", column_name=_("last name"), widget=TextWidget()
    )
    departement = Field(column_name=_("département"), widget=TextWidget())
    age_band = Field(column_name=_("age band"), widget=TextWidget())
    household_type = Field(column_name=_("household"), widget=TextWidget())
    reasons = Field(column_name=_("criteria met"), widget=TextWidget())
    currency = Field(attribute="campaign__program__currency", column_name=_("currency"))
    amount = Field(column_name=_("amount proposed"))
    amount_cents = _cents("amount", _("amount proposed (cents)"))
    granted = Field(column_name=_("amount granted"))
    granted_cents = _cents("granted_amount", _("amount granted (cents)"))
    status = Field(column_name=_("status"))
    decided_by = Field(column_name=_("decided by"), widget=TextWidget())
    decided_at = Field(
        attribute="decided_at", column_name=_("decided at"), widget=ParisIsoTimeWidget()
    )
    decision_reason = Field(
        attribute="decision_reason", column_name=_("reason"), widget=TextWidget()
    )
    unmet = Field(column_name=_("criteria no longer met"), widget=TextWidget())
    allocation = _integer("allocation_id", _("allocation"))
    created_at = Field(
        attribute="created_at", column_name=_("proposed at"), widget=ParisIsoTimeWidget()
    )

    # Each dehydrate method's value skips its field's TextWidget (django-import-export renders
    # only an attribute's value): neutralised by _text here, as AllocationResource's "created by".
    def dehydrate_departement(self, proposal: Proposal) -> str:
        return _text(eligibility.group_label("departement", proposal.departement))

    def dehydrate_age_band(self, proposal: Proposal) -> str:
        return _text(eligibility.group_label("age_band", proposal.age_band))

    def dehydrate_household_type(self, proposal: Proposal) -> str:
        return _text(eligibility.group_label("household_type", proposal.household_type))

    def dehydrate_reasons(self, proposal: Proposal) -> str:
        return _text(" ; ".join(eligibility.explain(reason) for reason in proposal.reasons or []))

    def dehydrate_unmet(self, proposal: Proposal) -> str:
        return _text(" ; ".join(eligibility.explain(reason) for reason in proposal.unmet or []))

    def dehydrate_amount(self, proposal: Proposal) -> str:
        return decimal_text(proposal.amount, proposal.campaign.program.currency)

    def dehydrate_granted(self, proposal: Proposal) -> str:
        if proposal.granted_amount is None:
            return ""
        return decimal_text(proposal.granted_amount, proposal.campaign.program.currency)

    def dehydrate_status(self, proposal: Proposal) -> str:
        return str(proposal.get_status_display())

    def dehydrate_decided_by(self, proposal: Proposal) -> str:
        user = proposal.decided_by
        return _text((user.get_full_name() or user.get_username()) if user else "")


def campaign_decisions(*, campaign: Campaign) -> QuerySet[Proposal]:
    """The campaign's proposals, oldest first, with the funder's file number of each person."""
    file_reference = Enrolment.objects.filter(
        funder=OuterRef("campaign__program__funder"), beneficiary=OuterRef("beneficiary")
    ).values("reference")[:1]
    return (
        Proposal.objects.filter(campaign=campaign.pk)
        .select_related("campaign__program", "beneficiary", "decided_by")
        .annotate(file_reference=Subquery(file_reference))
        .order_by("created_at", "pk")
    )


def campaign_decisions_export(*, campaign: Campaign, file_format: str) -> tuple[str, str, bytes]:
    """(file name, content type, content) of the decisions of a campaign, CSV or XLSX."""
    dataset = DecisionResource().export(campaign_decisions(campaign=campaign))
    export_format = FORMATS[file_format]
    content = export_format.export_data(dataset)
    if isinstance(content, str):
        content = ("\ufeff" + content).encode()
    filename = (
        f"{slugify(campaign.name)}-decisions-"
        f"{timezone.localdate(timezone=reports.PARIS):%Y-%m-%d}.{export_format.get_extension()}"
    )
    return filename, export_format.get_content_type(), content
