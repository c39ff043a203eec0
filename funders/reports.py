"""What the funder's dashboards and exports show, read from the ledger and the authorization
decisions, exact to the cent. Read-only: nothing here writes.

Where a program's money is, at any moment:

    funded = available to allocate + still in pockets + held + spent + ended aid not yet returned

- funded: FUND transfers into the program's float; allocated: ALLOCATE transfers out of it;
- spent: captures from the program's pockets minus their refunds, wherever a refund went back
  (the pocket while the aid is active, the float once it has ended);
- held: what uncaptured payments hold on the program's pockets, ended ones included;
- still in pockets: what beneficiaries can spend (balance - held) on active aid;
- expired / revoked and returned: EXPIRE and REVOKE sweeps back to the float;
- ended aid not yet returned: what an ended pocket keeps until its next sweep (normally 0).

Breakdowns (category, merchant, département, time) take the merchant as the decision recorded
it at the time of the payment, so a shop that moves or changes category later does not rewrite
past spending. Days and months are those of Europe/Paris."""

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from functools import cache

import iso18245
from django.db.models import F, QuerySet, Sum
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from core.time import PARIS
from engine import categories, geo
from funders import rollups
from funders.models import Program, ProgramFlow
from funders.rollups import CAPTURE_PATH, REFUND_PATH, SpendingKey
from ledger.models import Account, Entry, Transfer
from wallet.models import Pocket
from wallet.models.decisions import Decision

DEFAULT_DAYS = 90
MAX_DAYS_BY_DAY = 62  # longer periods are shown month by month


@dataclass(frozen=True)
class Period:
    """Whole days of Europe/Paris, `start` and `end` both included."""

    start: date
    end: date

    @classmethod
    def default(cls, *, today: date) -> "Period":
        return cls(start=today - timedelta(days=DEFAULT_DAYS - 1), end=today)

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, time.min, tzinfo=PARIS)

    @property
    def until(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=PARIS)

    @property
    def by_month(self) -> bool:
        return (self.end - self.start).days + 1 > MAX_DAYS_BY_DAY

    def buckets(self) -> list[date]:
        """Each day of the period, or the first day of each of its months."""
        if not self.by_month:
            return [self.start + timedelta(days=n) for n in range((self.end - self.start).days + 1)]
        months, month = [], self.start.replace(day=1)
        while month <= self.end:
            months.append(month)
            month = (month + timedelta(days=32)).replace(day=1)
        return months


# --- where the money is ---------------------------------------------------------------------------


@dataclass
class ProgramFigures:
    """Amounts in minor units of `currency`."""

    currency: str
    funded: int = 0
    allocated: int = 0
    captured: int = 0
    refunded: int = 0
    held: int = 0
    float_available: int = 0
    in_pockets: int = 0
    expired_returned: int = 0
    revoked_returned: int = 0
    not_yet_returned: int = 0
    # Card captures beyond what the pockets could pay: money the network took, which the program
    # owes, flagged for the funder to review (it is part of spent).
    receivable: int = 0

    @property
    def spent(self) -> int:
        return self.captured - self.refunded

    def __add__(self, other: "ProgramFigures") -> "ProgramFigures":
        if other.currency != self.currency:
            raise ValueError("figures in different currencies do not add up")
        amounts = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)
            if f.name != "currency"
        }
        return ProgramFigures(currency=self.currency, **amounts)


_FLOAT_KINDS = {
    Transfer.Kind.FUND: "funded",
    Transfer.Kind.EXPIRE: "expired_returned",
    Transfer.Kind.REVOKE: "revoked_returned",
}
_SPENT_KINDS = {Transfer.Kind.CAPTURE, Transfer.Kind.REFUND}
# Transfers that never post on a float (holds, captures, their releases): see program_statement.
PAYMENT_KINDS = [
    Transfer.Kind.HOLD,
    Transfer.Kind.CAPTURE,
    Transfer.Kind.VOID,
    Transfer.Kind.HOLD_EXPIRE,
]


def program_figures(*, programs: Sequence[Program]) -> dict[int, ProgramFigures]:
    """The figures of each program, by id, from the dashboards' rollup and the ledger's rows
    after its watermark (funders/rollups.py), in one snapshot: exact to the moment, whatever
    the number of programs and payments. What ended aid keeps beyond its holds (normally 0) is
    as of the last fold. Balances of the floats are read afresh: a program instance may hold an
    outdated one."""
    figures = {program.pk: ProgramFigures(currency=program.currency) for program in programs}
    ids = list(figures)
    with rollups.one_snapshot():
        mark = rollups.watermark()
        floats = Account.objects.filter(program__in=ids).values_list(
            "program", "balance", "pending"
        )
        for program, balance, pending in floats:
            figures[program].float_available = balance - pending
        in_pockets: dict[int, int] = defaultdict(int)
        for (program, _day, role, kind), (amount, pending) in rollups.flows(ids, mark).items():
            figure = figures[program]
            if role == ProgramFlow.Role.FLOAT:
                if kind == Transfer.Kind.ALLOCATE:
                    figure.allocated -= amount
                elif kind in _FLOAT_KINDS:
                    name = _FLOAT_KINDS[kind]
                    setattr(figure, name, getattr(figure, name) + amount)
                elif kind == Transfer.Kind.REFUND:
                    # A refund of a payment made on aid that has since ended.
                    figure.refunded += amount
                continue
            if role == ProgramFlow.Role.POCKET:
                figure.held += pending
                in_pockets[program] += amount - pending
            if kind == Transfer.Kind.CAPTURE:
                figure.captured -= amount
            elif kind == Transfer.Kind.REFUND:
                figure.refunded += amount
            if role == ProgramFlow.Role.RECEIVABLE and kind in _SPENT_KINDS:
                # Card captures beyond what the pockets could pay, and their refunds.
                figure.receivable -= amount
        ended = rollups.ended(ids, mark)
    for program, figure in figures.items():
        figure.not_yet_returned = ended.get(program, 0)
        figure.in_pockets = in_pockets[program] - figure.not_yet_returned
    return figures


def figures_by_currency(figures: Iterable[ProgramFigures]) -> dict[str, ProgramFigures]:
    """Several programs' figures summed, one total per currency."""
    totals: dict[str, ProgramFigures] = {}
    for figure in figures:
        zero = ProgramFigures(currency=figure.currency)
        totals[figure.currency] = totals.get(figure.currency, zero) + figure
    return dict(sorted(totals.items()))


# --- spending over a period -------------------------------------------------------------------


def _spending(program: Program, period: Period) -> dict[SpendingKey, int]:
    """Captures minus refunds made during the period on the program's pockets, by day and
    merchant (funders/rollups.py: the rollup and the payments after its watermark)."""
    with rollups.one_snapshot():
        rows = rollups.spending([program.pk], start=period.start, end=period.end)
    return {key: captured - refunded for key, (captured, refunded) in rows.items()}


@cache
def _iso_name(mcc: str) -> str:
    try:
        entry = iso18245.get_mcc(mcc)
    except (iso18245.MCCNotFound, iso18245.InvalidMCC):
        return mcc
    return f"{entry.iso_description or entry.usda_description or entry.visa_description} ({mcc})"


def category_label(mcc: str) -> str:
    """The named group of a merchant category code, as funders pick them in the rules; else
    the code's ISO 18245 name."""
    for name, codes in categories.GROUPS.items():
        if mcc in codes:
            return capfirst(str(categories.GROUP_LABELS[name]))
    return _iso_name(mcc)


def _by_amount(totals: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(((label, amount) for label, amount in totals.items() if amount), key=_largest)


def _largest(row: tuple[str, int]) -> tuple:
    return (-row[1], row[0])


def spending_by_category(*, program: Program, period: Period) -> list[tuple[str, int]]:
    """(label, amount), largest first."""
    totals: dict[str, int] = defaultdict(int)
    for (_p, _d, _m, _n, mcc, _dep), amount in _spending(program, period).items():
        totals[category_label(mcc) if mcc else str(_("Unknown category"))] += amount
    return _by_amount(totals)


def spending_by_merchant(*, program: Program, period: Period) -> list[tuple[str, int]]:
    """(merchant's name, amount), largest first. Merchants of the API are told apart by their
    id, shops seen only through the card network by their name."""
    totals: dict[tuple[int, str], int] = defaultdict(int)
    for (_p, _d, merchant, name, _mcc, _dep), amount in _spending(program, period).items():
        totals[(merchant, name)] += amount
    return sorted(
        (
            (name or str(_("Unknown shop")), amount)
            for (_merchant, name), amount in totals.items()
            if amount
        ),
        key=_largest,
    )


def spending_by_departement(*, program: Program, period: Period) -> list[tuple[str, int]]:
    totals: dict[str, int] = defaultdict(int)
    for (_p, _d, _m, _n, _mcc, code), amount in _spending(program, period).items():
        totals[geo.territory_label(code) if code else str(_("Abroad or unknown"))] += amount
    return _by_amount(totals)


def spending_over_time(*, program: Program, period: Period) -> list[tuple[date, int]]:
    """(day or first day of the month, amount) for every bucket of the period, empty ones
    included, in order."""
    totals: dict[date, int] = defaultdict(int)
    for (_p, day, _m, _n, _mcc, _dep), amount in _spending(program, period).items():
        totals[day.replace(day=1) if period.by_month else day] += amount
    return [(bucket, totals.get(bucket, 0)) for bucket in period.buckets()]


# --- declined payments --------------------------------------------------------------------------

# How a funder reads why a payment, or one of its pockets, was refused (every code of
# engine/codes.py but "approved").
REASON_LABELS = {
    "aid_not_yet_valid": _("The aid could not be used yet"),
    "aid_expired": _("The aid had expired"),
    "outside_allowed_hours": _("Outside the days or hours allowed"),
    "merchant_category_not_allowed": _("Kind of shop not allowed"),
    "merchant_not_accepted": _("Shop not accepted"),
    "merchant_not_recognised": _("Card shop not recognised for the aid"),
    "outside_zone": _("Shop outside the area allowed"),
    "limit_exceeded": _("Spending limit reached"),
    "product_not_covered": _("Products in the basket the aid does not pay for"),
    "insufficient_funds": _("Not enough money left on the aid"),
    "no_aid_available": _("No aid usable for this payment"),
    "wallet_frozen": _("Beneficiary's account blocked"),
    "card_frozen": _("Card blocked by the beneficiary"),
    "card_inactive": _("Card not active"),
    "merchant_suspended": _("Shop suspended"),
    "currency_not_supported": _("Currency not accepted"),
    "invalid_amount": _("Amount not valid"),
    "amount_too_large": _("Amount too large"),
    "internal_error": _("Technical problem"),
}


def reason_label(code: str) -> str:
    return str(REASON_LABELS.get(code, code))


def _program_decisions(program: Program, period: Period) -> QuerySet[Decision]:
    """Decisions of the period on wallets holding one of the program's pockets."""
    return Decision.objects.filter(
        decided_at__gte=period.since,
        decided_at__lt=period.until,
        wallet__in=Pocket.objects.filter(allocation__program=program.pk).values("wallet"),
    )


def _pocket_ids(program: Program) -> set[int]:
    return set(Pocket.objects.filter(allocation__program=program.pk).values_list("pk", flat=True))


def declines_by_reason(*, program: Program, period: Period) -> list[tuple[str, int]]:
    """(reason code, number of payments), most frequent first: declined or partially approved
    payments where one of the program's pockets was refused, by that pocket's reason, or that
    its pockets could not pay in full, by the payment's reason. A payment counts once per
    reason. From the rollup and the decisions after its watermark (funders/rollups.py)."""
    with rollups.one_snapshot():
        rows = rollups.declines([program.pk], start=period.start, end=period.end)
    counts: Counter[str] = Counter()
    for (_program, _day, reason), payments in rows.items():
        counts[reason] += payments
    return sorted(((code, n) for code, n in counts.items() if n), key=_largest)


# --- refusals by shop, kind of shop and commune -------------------------------------------------

REFUSAL_DIMENSIONS = ("reason", "shop", "category", "commune")


@dataclass
class RefusalLine:
    dimension: str  # one of REFUSAL_DIMENSIONS
    key: str  # the reason code, the merchant's id (or the card shop's name), the group, the commune
    label: str
    payments: int = 0
    amount: int = 0  # refused: asked minus approved, in minor units
    people: int = 0
    merchant_id: int | None = None  # a registered shop: its payments are one click away


def _mcc_group(mcc: str) -> str:
    return next((name for name, codes in categories.GROUPS.items() if mcc in codes), "")


def refusals_by(*, program: Program, period: Period) -> dict[str, list[RefusalLine]]:
    """The payments of the period that the program's aid refused (the same as
    declines_by_reason counts), by reason, shop, kind of shop and commune: how many, the amount
    refused and how many people, the largest amount first. From the rollup's refusals and the
    decisions after its watermark (funders/rollups.py): only refused payments are read."""
    with rollups.one_snapshot():
        refused = rollups.refusals([program.pk], start=period.start, end=period.end)
    lines: dict[tuple[str, str], RefusalLine] = {}
    people: dict[tuple[str, str], set[int]] = defaultdict(set)
    for row in refused:
        group = _mcc_group(row.mcc)
        keys = [("reason", code, reason_label(code), None) for code in row.reasons]
        shop_key = str(row.merchant_id) if row.merchant_id else row.merchant_name
        keys += [
            ("shop", shop_key, row.merchant_name, row.merchant_id),
            (
                "category",
                group or row.mcc,
                str(capfirst(categories.GROUP_LABELS[group])) if group else row.mcc,
                None,
            ),
            ("commune", row.commune, row.commune or "—", None),
        ]
        for dimension, key, label, shop in keys:
            line = lines.setdefault(
                (dimension, key), RefusalLine(dimension, key, label, merchant_id=shop)
            )
            line.payments += 1
            line.amount += row.amount
            people[(dimension, key)].add(row.wallet_id)
    result: dict[str, list[RefusalLine]] = {dimension: [] for dimension in REFUSAL_DIMENSIONS}
    for (dimension, key), line in lines.items():
        line.people = len(people[(dimension, key)])
        result[dimension].append(line)
    for dimension_lines in result.values():
        dimension_lines.sort(key=lambda line: (-line.amount, -line.payments, line.label))
    return result


# --- rows of the exports --------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentRow:
    reference: str
    decided_at: datetime
    merchant: str
    mcc: str
    currency: str
    amount: int  # asked
    approved: int  # from this program's pockets
    captured: int
    refunded: int
    status: str
    reason: str  # the payment's decline code, "" when approved in full
    refused_by_program: str  # why this program's pocket refused it, "" when it did not


def program_payments(*, program: Program, period: Period) -> list[PaymentRow]:
    """Every payment of the period that asked one of the program's pockets, in time order."""
    pockets = _pocket_ids(program)
    decisions = [
        decision
        for decision in _program_decisions(program, period).order_by("decided_at", "pk")
        if any(v["pocket_id"] in pockets for v in decision.trace.get("verdicts", []))
    ]
    ids = [decision.pk for decision in decisions]
    moved: dict[str, dict[int, int]] = {}
    for kind, path in ((Transfer.Kind.CAPTURE, CAPTURE_PATH), (Transfer.Kind.REFUND, REFUND_PATH)):
        rows = (
            Transfer.objects.filter(
                kind=kind,
                **{f"{path}decision__in": ids, f"{path}pocket__allocation__program": program.pk},
            )
            .values(decision=F(f"{path}decision"))
            .annotate(total=Sum("amount"))
        )
        moved[kind] = {row["decision"]: row["total"] for row in rows}
    rows = []
    for decision in decisions:
        trace = decision.trace
        refused = [
            v["reason"]
            for v in trace.get("verdicts", [])
            if v["pocket_id"] in pockets and not v["eligible"]
        ]
        merchant = decision.request.get("merchant", {})
        rows.append(
            PaymentRow(
                reference=decision.reference,
                decided_at=decision.decided_at,
                merchant=merchant.get("name", ""),
                mcc=merchant.get("mcc", ""),
                currency=decision.currency,
                amount=decision.amount,
                approved=sum(
                    part["amount"]
                    for part in trace.get("split", [])
                    if part["pocket_id"] in pockets
                ),
                captured=moved[Transfer.Kind.CAPTURE].get(decision.pk, 0),
                refunded=moved[Transfer.Kind.REFUND].get(decision.pk, 0),
                status=decision.status,
                reason=decision.reason,
                refused_by_program=refused[0] if refused else "",
            )
        )
    return rows


@dataclass(frozen=True)
class StatementRow:
    transfer: int
    at: datetime
    kind: str
    amount: int  # signed: money in is positive
    balance: int  # after this entry
    reference: str


def program_statement(*, program: Program, period: Period) -> list[StatementRow]:
    """Each entry of the period on the program's float account, with the balance after it."""
    account = program.float_account
    with rollups.one_snapshot():
        # The balance at the start of the period from the rollup's days before it (and the
        # transfers after its watermark), not from every entry of the float (one per grant).
        opening = sum(
            amount
            for (_program, _day, role, _kind), (amount, _pending) in rollups.flows(
                [program.pk], rollups.watermark(), before=period.start
            ).items()
            if role == ProgramFlow.Role.FLOAT
        )
        # The period's transfers through an index of the transfers that are not payments
        # (ledger.Transfer's transfer_not_payment_at_idx), then their entry on the float.
        entries = list(
            Entry.objects.filter(
                account=account,
                transfer__created_at__gte=period.since,
                transfer__created_at__lt=period.until,
            )
            .exclude(transfer__kind__in=PAYMENT_KINDS)
            .order_by("transfer__created_at", "transfer_id")
            .values(
                "amount",
                "transfer_id",
                "transfer__created_at",
                "transfer__kind",
                "transfer__metadata",
                funding=F("transfer__funding__reference"),
                decision=F(f"transfer__{REFUND_PATH}decision__reference"),
            )
        )
    rows, balance = [], opening
    for entry in entries:
        balance += entry["amount"]
        rows.append(
            StatementRow(
                transfer=entry["transfer_id"],
                at=entry["transfer__created_at"],
                kind=entry["transfer__kind"],
                amount=entry["amount"],
                balance=balance,
                reference=_statement_reference(entry),
            )
        )
    return rows


def _statement_reference(entry: dict) -> str:
    """What an accountant matches the line with: the bank transfer's reference for funding,
    the allocation for a grant and its return, the payment for a refund."""
    if entry["funding"] is not None:
        return entry["funding"]
    if entry["decision"] is not None:
        return entry["decision"]
    allocation = entry["transfer__metadata"].get("allocation")
    return str(_("allocation %(id)s") % {"id": allocation}) if allocation else ""
