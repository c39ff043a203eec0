from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _

from core.money import format_money
from core.replica import replica_reads
from core.time import PARIS
from funders.reports import Period
from reconciliation.report import (
    Check,
    PayeeLines,
    ProgramLines,
    Reconciliation,
    reconciliation_build,
)


class Command(BaseCommand):
    help = (
        "The operator's reconciliation: for each program and in total per currency, where the "
        "money is, balanced to the cent against the ledger. Exits 1, naming the program or "
        "merchant and the line, when an identity does not hold."
    )

    def add_arguments(self, parser):
        parser.add_argument("--program", type=int, help="only this program's lines and checks")
        parser.add_argument(
            "--until",
            type=date.fromisoformat,
            help="as of the end of this day (YYYY-MM-DD, Europe/Paris); now by default",
        )

    def handle(self, *args, program: int | None, until: date | None, **options):
        as_of = Period(start=until, end=until).until if until else None
        with replica_reads():
            report = reconciliation_build(as_of=as_of)
        stamp = timezone.localtime(report.as_of, PARIS).strftime("%Y-%m-%d %H:%M")
        self.stdout.write(_("Reconciliation as of %(at)s (Europe/Paris)") % {"at": stamp})
        if program is None:
            shown = report.programs
            checks = report.checks
        else:
            shown = [lines for lines in report.programs if lines.program == program]
            if not shown:
                raise CommandError(_("No program has the id %(id)s.") % {"id": program})
            checks = [check for check in report.checks if check.subject == shown[0].subject]
        payees = {payee.account: payee for payee in report.payees}
        for lines in shown:
            self.stdout.write(f"\n{lines.subject} — {lines.funder} ({lines.currency})")
            self._program_lines(lines, payees)
            self._checks([check for check in checks if check.subject == lines.subject])
        if program is None:
            self._totals(report)
        failures = [check for check in checks if not check.ok]
        for check in failures:
            self.stderr.write(f"NOT BALANCED {check}")
        if failures:
            raise CommandError(
                _("reconcile: %(count)d line(s) do not balance, first: %(first)s")
                % {"count": len(failures), "first": failures[0]}
            )
        self.stdout.write("\n" + _("reconcile: every line balances to the cent"))

    def _line(self, label: str, amount: int, currency: str, indent: int = 2) -> None:
        self.stdout.write(f"{' ' * indent}{label:<56} {format_money(amount, currency):>18}")

    def _program_lines(self, lines: ProgramLines, payees: dict[int, PayeeLines]) -> None:
        currency = lines.currency
        self._line(_("money in (funding)"), lines.funded, currency)
        self._line(_("allocated"), lines.allocated, currency)
        spent = sorted(lines.spent_by_payee.items(), key=lambda item: payees[item[0]].label)
        for account, amount in spent:
            payee = payees[account]
            label = (
                _("spent through the card network")
                if payee.card_network
                else _("spent at %(merchant)s") % {"merchant": payee.label}
            )
            self._line(label, amount, currency)
        self._line(_("spent in all"), lines.spent, currency)
        for label, amount in (
            (_("held by payments not yet captured"), lines.held),
            (_("expired and returned"), lines.expired_returned),
            (_("revoked and returned"), lines.revoked_returned),
            (_("refunded to the program after the aid ended"), lines.refunded_to_float),
            (_("paid back to the funder"), lines.returned_to_funder),
            (_("still in pockets"), lines.in_pockets),
            (_("ended aid not yet returned"), lines.not_yet_returned),
            (_("not yet allocated (float)"), lines.float_available),
            (_("held on the float"), lines.float_held),
            (_("receivable (card payments beyond the pockets)"), lines.receivable),
        ):
            self._line(label, amount, currency)

    def _checks(self, checks: list[Check]) -> None:
        for check in checks:
            self.stdout.write(f"  {'ok' if check.ok else 'NOT BALANCED':<12} {check}")

    def _totals(self, report: Reconciliation) -> None:
        for currency in report.currencies:
            code = currency.currency
            self.stdout.write("\n" + _("Total %(currency)s") % {"currency": code})
            payees = {payee.account: payee for payee in report.payees}
            self._program_lines(report.program_total(code), payees)
            for payee in payees.values():
                if payee.currency != code:
                    continue
                self.stdout.write(f"  {payee.label}")
                self._line(_("spent"), payee.spent, code, indent=4)
                self._line(_("paid out"), payee.paid_out, code, indent=4)
                self._line(_("in transit"), payee.in_transit, code, indent=4)
            self._line(_("received by the payout accounts"), currency.payout_accounts, code)
            subjects = {code} | {payee.subject for payee in payees.values()}
            self._checks([check for check in report.checks if check.subject in subjects])
