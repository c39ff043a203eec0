"""The operator's reconciliation: where each program's money is as of an instant, read from the
ledger's immutable records (entries, holds and their resolutions), and the identities that must
hold between those figures, to the cent. Run by `manage.py reconcile` and daily by Celery.

Each program's money is on its own accounts (the float, the pockets, the receivable) or has
left them as spending, to a merchant's payable (API payments) or to the card network's
settlement account (card payments). A payable holds several programs' money: each capture and
refund is attributed to a program through the program's account on its other side (the pocket
it came from, the float or receivable a refund went back to), never through the merchant. A
payout moves a merchant's money from its payable to a payout account; what a payable still
holds is in transit.

Per program:

    money in  = not yet allocated + held on the float + still in pockets + held
                + ended aid not yet returned + spent - receivable + paid back to the funder
    float     = money in - allocated + expired and returned + revoked and returned
                + refunded to the program after its aid ended - paid back to the funder
    allocated = still in pockets + held + ended aid not yet returned + expired and returned
                + revoked and returned + spent + refunded to the program - receivable

(the first follows from the other two; the other two say which side broke). Per currency:

    money in of all programs - paid back to funders = what the external funding account
                                                      received (net)
    per merchant (and the card network): spent = paid out + in transit; paid out <= spent
    paid out by merchants = what the payout accounts received
    money in = programs' accounts - receivables + in transit + paid out

`ledger verify` proves what this builds on (each transfer sums to zero, each running balance
equals its entries); this report works from entries alone, so it answers for any past instant.
The funder dashboards' figures (funders/reports.py) are not reused: they read running balances,
which exist only for now, and find captures through their hold, which misses a card capture
beyond its authorization."""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import connections, router
from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from funders.models import Allocation, Program
from ledger.models import Account, Entry, Transfer
from merchants.models import Merchant
from wallet.models import Pocket

PAYEE_KINDS = (Account.Kind.MERCHANT_PAYABLE, Account.Kind.CARD_SETTLEMENT)
PROGRAM_KINDS = (Account.Kind.PROGRAM_FLOAT, Account.Kind.POCKET, Account.Kind.PROGRAM_RECEIVABLE)
RECEIVABLE_PREFIX = "program-receivable:"  # stripe_issuing.transactions.receivable_account

_FLOAT_KINDS = {
    Transfer.Kind.FUND: "funded",
    Transfer.Kind.EXPIRE: "expired_returned",
    Transfer.Kind.REVOKE: "revoked_returned",
    Transfer.Kind.REFUND: "refunded_to_float",
}
# A closed program's float paid back to its funder (funders/closing.py): a debit of the float.
_FLOAT_DEBITS = {Transfer.Kind.FUNDER_RETURN: "returned_to_funder"}


@dataclass(frozen=True)
class Check:
    """An identity between two figures, or an upper bound (`at_most`: left <= right)."""

    subject: str  # "program <id> «name»", "<currency>" or "<currency> <payee>"
    code: str  # stable: money_in, float, pockets, funding, payee, paid_out_at_most_spent, ...
    left_label: str
    left: int
    right_label: str
    right: int
    at_most: bool = False

    @property
    def ok(self) -> bool:
        return self.left <= self.right if self.at_most else self.left == self.right

    @property
    def difference(self) -> int:
        return self.left - self.right

    def __str__(self) -> str:
        relation = "<=" if self.at_most else "="
        return (
            f"{self.subject}: {self.code}: {self.left_label} ({self.left}) {relation} "
            f"{self.right_label} ({self.right}), difference {self.difference}"
        )


@dataclass
class ProgramLines:
    """One program's figures as of the instant, in minor units of `currency`."""

    program: int
    name: str
    funder: str
    currency: str
    funded: int = 0
    allocated: int = 0
    expired_returned: int = 0
    revoked_returned: int = 0
    refunded_to_float: int = 0
    returned_to_funder: int = 0
    float_balance: int = 0
    float_held: int = 0
    pockets_active: int = 0  # balances of the pockets of aid still running, held included
    pockets_ended: int = 0
    held_active: int = 0
    held_ended: int = 0
    receivable_balance: int = 0  # negative: what card payments beyond the pockets took
    spent_by_payee: dict[int, int] = field(default_factory=dict)  # payee account id -> net

    @property
    def subject(self) -> str:
        return f"program {self.program} «{self.name}»"

    @property
    def float_available(self) -> int:
        return self.float_balance - self.float_held

    @property
    def held(self) -> int:
        return self.held_active + self.held_ended

    @property
    def in_pockets(self) -> int:
        return self.pockets_active - self.held_active

    @property
    def not_yet_returned(self) -> int:
        return self.pockets_ended - self.held_ended

    @property
    def receivable(self) -> int:
        return -self.receivable_balance

    @property
    def spent(self) -> int:
        return sum(self.spent_by_payee.values())


@dataclass
class PayeeLines:
    """A merchant's payable, or the card network's settlement account, across programs."""

    account: int
    label: str
    currency: str
    card_network: bool = False
    spent: int = 0  # attributed to programs
    paid_out: int = 0
    in_transit: int = 0  # the account's balance

    @property
    def subject(self) -> str:
        return f"{self.currency} {self.label}"


@dataclass
class CurrencyTotals:
    currency: str
    external_funding: int = 0  # what funders paid in, by the external funding account
    payout_accounts: int = 0  # what the payout accounts received
    by_kind: dict[str, int] = field(default_factory=dict)  # balances of all accounts, by kind


@dataclass
class Reconciliation:
    as_of: datetime
    programs: list[ProgramLines]
    payees: list[PayeeLines]
    currencies: list[CurrencyTotals]
    checks: list[Check]

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]

    def program_total(self, currency: str) -> ProgramLines:
        """Every program of a currency summed into one set of lines."""
        total = ProgramLines(program=0, name=str(_("all programs")), funder="", currency=currency)
        for lines in self.programs:
            if lines.currency != currency:
                continue
            for name in _SUMMED:
                setattr(total, name, getattr(total, name) + getattr(lines, name))
            for payee, amount in lines.spent_by_payee.items():
                total.spent_by_payee[payee] = total.spent_by_payee.get(payee, 0) + amount
        return total


_SUMMED = (
    "funded",
    "allocated",
    "expired_returned",
    "revoked_returned",
    "refunded_to_float",
    "returned_to_funder",
    "float_balance",
    "float_held",
    "pockets_active",
    "pockets_ended",
    "held_active",
    "held_ended",
    "receivable_balance",
)


def reconciliation_build(*, as_of: datetime | None = None) -> Reconciliation:
    """The figures of every program and payee as of `as_of` (now by default; transfers made at
    or after it are left out) and every identity checked."""
    as_of = as_of or timezone.now()
    entries = Entry.objects.filter(transfer__created_at__lt=as_of)
    programs = {
        program.pk: ProgramLines(
            program=program.pk,
            name=program.name,
            funder=program.funder.name,
            currency=program.currency,
        )
        for program in Program.objects.select_related("funder").order_by("pk")
    }
    _float_figures(programs, entries)
    _pocket_figures(programs, entries, as_of)
    _held_figures(programs, as_of)
    _receivable_figures(programs, entries)
    payees = _payees(entries)
    _spending(programs, payees, as_of)
    currencies = _currency_totals(entries)
    report = Reconciliation(
        as_of=as_of,
        programs=list(programs.values()),
        payees=sorted(payees.values(), key=lambda p: (p.currency, p.label, p.account)),
        currencies=sorted(currencies.values(), key=lambda c: c.currency),
        checks=[],
    )
    report.checks = [check for lines in report.programs for check in program_checks(lines)]
    report.checks += _currency_checks(report)
    return report


def _float_figures(programs: dict[int, ProgramLines], entries) -> None:
    rows = (
        entries.filter(account__kind=Account.Kind.PROGRAM_FLOAT)
        .values(program=F("account__program"), kind=F("transfer__kind"))
        .annotate(total=Sum("amount"))
    )
    for row in rows:
        lines = programs[row["program"]]
        lines.float_balance += row["total"]
        if row["kind"] == Transfer.Kind.ALLOCATE:
            lines.allocated = -row["total"]
        elif row["kind"] in _FLOAT_KINDS:
            setattr(lines, _FLOAT_KINDS[row["kind"]], row["total"])
        elif row["kind"] in _FLOAT_DEBITS:
            setattr(lines, _FLOAT_DEBITS[row["kind"]], -row["total"])


def _ended(path: str, as_of: datetime) -> Q:
    # An allocation's status is today's; as of an earlier instant, it had ended only if it
    # ended before then.
    return Q(**{f"{path}allocation__ended_at__lt": as_of})


def _pocket_figures(programs: dict[int, ProgramLines], entries, as_of: datetime) -> None:
    ended = _ended("account__pocket__", as_of)
    rows = (
        entries.filter(account__kind=Account.Kind.POCKET)
        .values(program=F("account__pocket__allocation__program"))
        .annotate(
            active=Coalesce(Sum("amount", filter=~ended), 0),
            ended=Coalesce(Sum("amount", filter=ended), 0),
        )
    )
    for row in rows:
        programs[row["program"]].pockets_active = row["active"]
        programs[row["program"]].pockets_ended = row["ended"]


def _held_figures(programs: dict[int, ProgramLines], as_of: datetime) -> None:
    """Holds placed before the instant and not resolved by then."""
    ended = _ended("debit_account__pocket__", as_of)
    rows = (
        Transfer.objects.filter(is_pending=True, created_at__lt=as_of)
        .filter(Q(resolution__isnull=True) | Q(resolution__created_at__gte=as_of))
        .values(
            pocket_program=F("debit_account__pocket__allocation__program"),
            float_program=F("debit_account__program"),
        )
        .annotate(
            total=Sum("amount"),
            ended=Coalesce(Sum("amount", filter=ended), 0),
        )
    )
    for row in rows:
        if row["pocket_program"] is not None:
            lines = programs[row["pocket_program"]]
            lines.held_ended += row["ended"]
            lines.held_active += row["total"] - row["ended"]
        elif row["float_program"] is not None:
            programs[row["float_program"]].float_held += row["total"]


def _program_of_receivable(code: str) -> int | None:
    pk = code.removeprefix(RECEIVABLE_PREFIX)
    return int(pk) if code.startswith(RECEIVABLE_PREFIX) and pk.isdigit() else None


def _receivable_figures(programs: dict[int, ProgramLines], entries) -> None:
    rows = (
        entries.filter(account__kind=Account.Kind.PROGRAM_RECEIVABLE)
        .values("account__code")
        .annotate(total=Sum("amount"))
    )
    for row in rows:
        program = _program_of_receivable(row["account__code"])
        if program in programs:
            programs[program].receivable_balance += row["total"]


def _payees(entries) -> dict[int, PayeeLines]:
    rows = (
        entries.filter(account__kind__in=PAYEE_KINDS)
        .values("account", currency=F("account__currency"), kind=F("account__kind"))
        .annotate(
            balance=Sum("amount"),
            payouts=Coalesce(Sum("amount", filter=Q(transfer__kind=Transfer.Kind.PAYOUT)), 0),
        )
    )
    payees = {
        row["account"]: PayeeLines(
            account=row["account"],
            label=str(_("card network")),
            currency=row["currency"],
            card_network=row["kind"] == Account.Kind.CARD_SETTLEMENT,
            paid_out=-row["payouts"],
            in_transit=row["balance"],
        )
        for row in rows
    }
    merchants = Merchant.objects.filter(payable_account__in=list(payees))
    for account, name in merchants.values_list("payable_account", "trade_name"):
        payees[account].label = name
    return payees


def _spending(
    programs: dict[int, ProgramLines], payees: dict[int, PayeeLines], as_of: datetime
) -> None:
    """Captures minus refunds, per program and payee, from the payee's side of each transfer,
    attributed through the program's account on the other side (a float or a pocket, else a
    program's receivable). What no program's account paid is left out, so that the payee's
    identity fails on it.

    Set-based: the other side of each capture and refund summed up once per transfer, joined
    to the payees' entries (a subquery per payee entry, 10 million at a million people, was most
    of the reconciliation's time). A transfer paid from pockets of several programs is
    attributed to one of them (the lowest id), as the first of its other entries was before."""
    payee_kinds = list(PAYEE_KINDS)
    kinds = [Transfer.Kind.CAPTURE, Transfer.Kind.REFUND]
    entry, account, transfer = Entry._meta.db_table, Account._meta.db_table, Transfer._meta.db_table
    # Raw SQL is not routed: the reads' database (the replica inside replica_reads()) by name.
    connection = connections[router.db_for_read(Entry)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT p.account_id, x.program, x.receivable, SUM(p.amount)
            FROM {entry} p
            JOIN {account} pa ON pa.id = p.account_id
            JOIN (SELECT o.transfer_id, MIN(COALESCE(f.id, al.program_id)) AS program,
                         MIN(CASE WHEN oa.kind = %s THEN oa.code END) AS receivable
                  FROM {entry} o
                  JOIN {transfer} t ON t.id = o.transfer_id
                  JOIN {account} oa ON oa.id = o.account_id
                  LEFT JOIN {Program._meta.db_table} f ON f.float_account_id = oa.id
                  LEFT JOIN {Pocket._meta.db_table} pk ON pk.account_id = oa.id
                  LEFT JOIN {Allocation._meta.db_table} al ON al.id = pk.allocation_id
                  WHERE t.kind IN (%s, %s) AND t.created_at < %s
                    AND oa.kind NOT IN (%s, %s)
                  GROUP BY o.transfer_id) x ON x.transfer_id = p.transfer_id
            WHERE pa.kind IN (%s, %s)
            GROUP BY p.account_id, x.program, x.receivable""",
            [
                Account.Kind.PROGRAM_RECEIVABLE,
                *kinds,
                connection.ops.adapt_datetimefield_value(as_of),
                *payee_kinds,
                *payee_kinds,
            ],
        )
        rows = cursor.fetchall()
    for payee_account, program, receivable, summed in rows:
        total = int(summed)  # PostgreSQL sums bigints as numeric
        if program is None and receivable is not None:
            program = _program_of_receivable(receivable)
        payee = payees[payee_account]
        if program in programs:
            spent = programs[program].spent_by_payee
            spent[payee.account] = spent.get(payee.account, 0) + total
            payee.spent += total


def _currency_totals(entries) -> dict[str, CurrencyTotals]:
    totals: dict[str, CurrencyTotals] = {}
    rows = (
        entries.values(currency=F("account__currency"), kind=F("account__kind"))
        .annotate(total=Sum("amount"))
        .order_by()
    )
    for row in rows:
        currency = totals.setdefault(row["currency"], CurrencyTotals(currency=row["currency"]))
        currency.by_kind[row["kind"]] = row["total"]
    for currency in totals.values():
        currency.external_funding = -currency.by_kind.get(Account.Kind.EXTERNAL_FUNDING, 0)
        currency.payout_accounts = currency.by_kind.get(Account.Kind.PAYOUT, 0)
    return totals


def program_checks(lines: ProgramLines) -> list[Check]:
    returned = lines.expired_returned + lines.revoked_returned
    return [
        Check(
            lines.subject,
            "money_in",
            "money in",
            lines.funded,
            "float + in pockets + held + not yet returned + spent - receivable "
            "+ paid back to the funder",
            lines.float_balance
            + lines.in_pockets
            + lines.held
            + lines.not_yet_returned
            + lines.spent
            - lines.receivable
            + lines.returned_to_funder,
        ),
        Check(
            lines.subject,
            "float",
            "float",
            lines.float_balance,
            "money in - allocated + returned + refunded to the program - paid back to the funder",
            lines.funded
            - lines.allocated
            + returned
            + lines.refunded_to_float
            - lines.returned_to_funder,
        ),
        Check(
            lines.subject,
            "pockets",
            "allocated",
            lines.allocated,
            "in pockets + held + not yet returned + returned + spent + refunded to the program "
            "- receivable",
            lines.in_pockets
            + lines.held
            + lines.not_yet_returned
            + returned
            + lines.spent
            + lines.refunded_to_float
            - lines.receivable,
        ),
    ]


def _currency_checks(report: Reconciliation) -> list[Check]:
    checks: list[Check] = []
    for currency in report.currencies:
        code = currency.currency
        programs = report.program_total(code)
        payees = [payee for payee in report.payees if payee.currency == code]
        for payee in payees:
            checks.append(
                Check(
                    payee.subject,
                    "payee",
                    "spent by programs",
                    payee.spent,
                    "paid out + in transit",
                    payee.paid_out + payee.in_transit,
                )
            )
            checks.append(
                Check(
                    payee.subject,
                    "paid_out_at_most_spent",
                    "paid out",
                    payee.paid_out,
                    "spent by programs",
                    payee.spent,
                    at_most=True,
                )
            )
        paid_out = sum(payee.paid_out for payee in payees)
        in_transit = sum(payee.in_transit for payee in payees)
        checks += [
            Check(
                code,
                "funding",
                "money in of all programs - paid back to funders",
                programs.funded - programs.returned_to_funder,
                "received by the external funding account",
                currency.external_funding,
            ),
            Check(
                code,
                "payouts",
                "paid out by merchants",
                paid_out,
                "received by the payout accounts",
                currency.payout_accounts,
            ),
            Check(
                code,
                "whole_ledger",
                "received by the external funding account",
                currency.external_funding,
                "programs' accounts - receivables + in transit + paid out",
                programs.float_balance
                + programs.pockets_active
                + programs.pockets_ended
                + programs.receivable_balance
                + in_transit
                + currency.payout_accounts,
            ),
        ]
    return checks
