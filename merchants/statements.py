"""A merchant's statement for one settlement batch: each payment, refund and amount carried
from the previous statement, and the net paid; as CSV and as a readable page. Amounts are
written the French way ("1 234,50 €") whatever the reader's language: the merchants are French
shops and their accounts are in French."""

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone, translation

from core.money import format_money
from core.time import PARIS
from ledger.models import Transfer
from merchants.models.settlement import SettlementBatch

CSV_COLUMNS = [
    "date",
    "type",
    "authorization",
    "merchant_reference",
    "amount_cents",
    "amount",
    "funder",
]


def money_fr(amount: int, currency: str) -> str:
    with translation.override("fr"):
        return format_money(amount, currency)


def _when(value: datetime) -> str:
    return timezone.localtime(value, PARIS).strftime("%d/%m/%Y %H:%M")


@dataclass(frozen=True)
class StatementRow:
    date: str
    kind: str
    label: str
    authorization: str
    merchant_reference: str
    amount: int
    money: str
    funder: str  # whose aid paid (or was refunded) this line; "" for a carried amount


def _funder_name(transfer: Transfer | None) -> str:
    """The funder of the aid a payment line took from (or a refund line gave back to): each line
    is one ledger transfer of one pocket's hold, so a payment split across aids has one line per
    aid, each with its funder. A carried amount, or a card capture without a hold, has none."""
    if transfer is None:
        return ""
    hold = transfer.pending_transfer or (
        transfer.refund_of.pending_transfer if transfer.refund_of else None
    )
    link = getattr(hold, "decision_hold", None) if hold is not None else None
    return link.pocket.allocation.program.funder.name if link is not None else ""


def statement_rows(batch: SettlementBatch) -> list[StatementRow]:
    lines = batch.lines.select_related(
        "decision",
        "carried_from",
        "transfer__pending_transfer__decision_hold__pocket__allocation__program__funder",
        "transfer__refund_of__pending_transfer__decision_hold__pocket__allocation__program__funder",
    ).order_by("occurred_at", "pk")
    return [
        StatementRow(
            date=_when(line.occurred_at),
            kind=line.kind,
            label=str(line.get_kind_display()),
            authorization=(
                line.decision.reference
                if line.decision
                else line.carried_from.reference
                if line.carried_from
                else ""
            ),
            merchant_reference=line.decision.merchant_reference if line.decision else "",
            amount=line.amount,
            money=money_fr(line.amount, batch.currency),
            funder=_funder_name(line.transfer),
        )
        for line in lines
    ]


def _cell(value: str) -> str:
    # A spreadsheet runs a cell that starts with one of these as a formula; the merchant's own
    # references are free text.
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def statement_csv(batch: SettlementBatch) -> str:
    """Semicolon-separated, as spreadsheets in French expect when amounts use a decimal comma;
    the last row is the net."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in statement_rows(batch):
        writer.writerow(
            [
                row.date,
                row.kind,
                row.authorization,
                _cell(row.merchant_reference),
                row.amount,
                row.money,
                _cell(row.funder),
            ]
        )
    writer.writerow(
        [
            _when(batch.period_end),
            "net",
            batch.reference,
            "",
            batch.net,
            money_fr(batch.net, batch.currency),
            "",
        ]
    )
    return out.getvalue()


def statement_filename(batch: SettlementBatch, extension: str) -> str:
    day = timezone.localtime(batch.period_end, PARIS).date().isoformat()
    return f"statement-{batch.reference}-{day}.{extension}"


def statement_html(batch: SettlementBatch) -> str:
    payout = getattr(batch, "payout", None)
    return render_to_string(
        "merchants/statement.html",
        {
            "batch": batch,
            "merchant": batch.merchant,
            "operator_name": settings.OPERATOR_NAME,
            "rows": statement_rows(batch),
            "period_start": _when(batch.period_start) if batch.period_start else None,
            "period_end": _when(batch.period_end),
            "captured": money_fr(batch.captured, batch.currency),
            "refunded": money_fr(-batch.refunded, batch.currency),
            "carried": money_fr(batch.carried, batch.currency) if batch.carried else None,
            "net": money_fr(batch.net, batch.currency),
            "payout": payout,
        },
    )
