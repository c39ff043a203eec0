"""Closing a program and paying its money back to the funder.

`program_close`: the program stops granting (it is no longer active, which allocation_create
refuses); its aid runs to its end dates, where each pocket's remainder returns to the float as
always. Once no aid is left running and nothing is held on the float, `program_return` pays what
is left on the float back to the funder: one ledger transfer from the float to the external
funding account, where the funder's money came in, recorded on the closure with the funder's
IBAN; the SEPA credit transfer file (pain.001) is built from it by the back office, and the
closing statement says where every cent went. A second close is refused.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import InvalidState
from funders.models import Allocation, Program, ProgramClosure
from funders.services import external_funding_account
from ledger.models import Account, Entry, Transfer
from ledger.services import transfer_post


class ProgramAlreadyClosed(InvalidState):
    code = "program_already_closed"
    default_message = _("This program is already closed.")


class FunderIbanMissing(InvalidState):
    code = "funder_iban_missing"
    default_message = _(
        "The funder has no bank account (IBAN) to pay the money back to: add it on its page."
    )


def program_close(*, program: Program, by) -> ProgramClosure:
    """Stop the program's grants now, and pay the float back at once if no aid is running."""
    with transaction.atomic():
        locked = Program.objects.select_for_update().get(pk=program.pk)
        if ProgramClosure.objects.filter(program=locked).exists():
            raise ProgramAlreadyClosed()
        if not locked.funder.iban:
            raise FunderIbanMissing(field="iban")
        locked.is_active = False
        locked.save(update_fields=["is_active"])
        program.is_active = False
        closure = ProgramClosure.objects.create(
            program=locked, closed_by=by, closed_at=timezone.now()
        )
    program_return(closure=closure)
    return closure


def _running(program: Program) -> bool:
    return Allocation.objects.filter(program=program, status=Allocation.Status.ACTIVE).exists()


def program_return(*, closure: ProgramClosure) -> ProgramClosure:
    """Pay the float back to the funder once no aid of the program runs any more. Safe to run
    again: a closure paid back is left as it is, one still waiting waits."""
    with transaction.atomic():
        closure = ProgramClosure.objects.select_for_update().get(pk=closure.pk)
        program = closure.program
        if closure.returned_at is not None or _running(program):
            return closure
        float_account = Account.objects.select_for_update().get(pk=program.float_account_id)
        if float_account.pending:
            return closure
        amount = float_account.available
        transfer = None
        if amount > 0:
            transfer = transfer_post(
                kind=Transfer.Kind.FUNDER_RETURN,
                currency=program.currency,
                legs=[
                    (float_account, -amount),
                    (external_funding_account(program.currency), amount),
                ],
                idempotency_key=f"funder-return:{program.pk}",
                metadata={"program": program.pk, "iban": program.funder.iban},
            )
        closure.transfer = transfer
        closure.amount_returned = amount
        closure.iban = program.funder.iban
        closure.bic = program.funder.bic
        closure.returned_at = timezone.now()
        closure.save()
    return closure


def program_returns_due() -> int:
    """Pay back every closed program whose aid has all ended. Returns how many were paid."""
    paid = 0
    for closure in ProgramClosure.objects.filter(returned_at__isnull=True):
        if program_return(closure=closure).returned_at is not None:
            paid += 1
    return paid


# --- the closing statement ---------------------------------------------------------------------


@dataclass
class ClosingStatement:
    """Where the program's money went, in minor units, read from the ledger."""

    currency: str
    funded: int = 0
    granted: int = 0
    spent_by_shop: dict[str, int] = field(default_factory=dict)  # net of merchants' refunds
    refunded: int = 0  # merchants' refunds back to pockets (already netted in spent_by_shop)
    expired: int = 0
    revoked: int = 0
    returned: int = 0  # paid back to the funder
    float_left: int = 0
    pockets_left: int = 0
    receivable: int = 0  # card captures beyond the pockets, owed by the program

    @property
    def spent(self) -> int:
        return sum(self.spent_by_shop.values())

    @property
    def balances(self) -> bool:
        """Every cent funded is spent, returned to the funder or still on the program's
        accounts; and every cent granted is spent, ended back on the float or still in a
        pocket."""
        return (
            self.funded
            == self.spent - self.receivable + self.returned + self.float_left + self.pockets_left
            and self.granted
            == self.spent - self.receivable + self.expired + self.revoked + self.pockets_left
        )


def closing_statement(*, program: Program) -> ClosingStatement:
    statement = ClosingStatement(currency=program.currency)
    on_float = (
        Entry.objects.filter(account=program.float_account_id)
        .values_list("transfer__kind")
        .annotate(total=Sum("amount"))
    )
    for kind, total in on_float:
        total = int(total)
        statement.float_left += total
        if kind == Transfer.Kind.FUND:
            statement.funded += total
        elif kind == Transfer.Kind.ALLOCATE:
            statement.granted -= total
        elif kind == Transfer.Kind.EXPIRE:
            statement.expired += total
        elif kind == Transfer.Kind.REVOKE:
            statement.revoked += total
        elif kind == Transfer.Kind.FUNDER_RETURN:
            statement.returned -= total
    pockets = Account.objects.filter(pocket__allocation__program=program)
    statement.pockets_left = int(pockets.aggregate(total=Sum("balance"))["total"] or 0)
    # What left the pockets for a shop (captures) or came back (refunds), by the shop's account.
    moved = Entry.objects.filter(
        transfer__kind__in=[Transfer.Kind.CAPTURE, Transfer.Kind.REFUND],
        transfer__entries__account__in=pockets,
    ).exclude(Q(account__in=pockets) | Q(account__kind=Account.Kind.PROGRAM_RECEIVABLE))
    spent: dict[str, int] = defaultdict(int)
    for name, kind, amount in moved.values_list("account__name", "transfer__kind", "amount"):
        spent[name] += amount
        if kind == Transfer.Kind.REFUND:
            statement.refunded -= amount
    statement.spent_by_shop = dict(sorted(spent.items()))
    receivables = Account.objects.filter(
        kind=Account.Kind.PROGRAM_RECEIVABLE, code=f"program-receivable:{program.pk}"
    )
    statement.receivable = -int(
        Entry.objects.filter(account__in=receivables).aggregate(total=Sum("amount"))["total"] or 0
    )
    return statement
