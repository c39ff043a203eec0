"""Money between us and Stripe Issuing: the top-ups that fund card spending, and the
reconciliation of the ledger's card-settlement account with Stripe's balance transactions."""

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser

from core.money import validate_amount
from core.stripe import stripe_client
from funders.models import Funding, Program
from funders.services import program_fund
from ledger.models import Entry, Transfer
from stripe_issuing.accounts import card_settlement_account
from stripe_issuing.cards import CardsNotAvailable
from stripe_issuing.client import cards_enabled


def program_topup(
    *, program: Program, amount: int, token: str, by: AbstractBaseUser | None = None
) -> Funding:
    """Top up Stripe's Issuing balance for a program's card spending, and record the money on
    the program's float. `token` comes from the form: submitting it twice tops up once."""
    if not cards_enabled():
        raise CardsNotAvailable()
    validate_amount(amount)
    topup = stripe_client().v1.topups.create(
        {
            "amount": amount,
            "currency": program.currency.lower(),
            "destination_balance": "issuing",
            "description": f"Program {program.pk}: {program.name}"[:200],
            "metadata": {"program": str(program.pk)},
        },
        {"idempotency_key": f"topup:{program.pk}:{token}"},
    )
    return program_fund(
        program=program,
        amount=amount,
        idempotency_key=f"stripe-topup:{topup.id}",
        reference=topup.id,
        method=Funding.Method.STRIPE_TOPUP,
        by=by,
    )


# --- reconciliation -------------------------------------------------------------------------

# Stripe's ids inside our records (idempotency keys, metadata): a capture or refund is keyed by
# its issuing transaction (ipi_), a hold by its authorization (iauth_).
_TRANSACTION_ID = re.compile(r"\bipi_[A-Za-z0-9]+")
_AUTHORIZATION_ID = re.compile(r"\biauth_[A-Za-z0-9]+")
UNMATCHED = "(no Stripe id)"


@dataclass
class Comparison:
    """One kind of movement on both sides, in cents owed to the card network (a capture or a
    hold counts positive, a refund or a release negative)."""

    name: str
    ledger: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    stripe: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def ledger_total(self) -> int:
        return sum(self.ledger.values())

    @property
    def stripe_total(self) -> int:
        return sum(self.stripe.values())

    @property
    def difference(self) -> int:
        return self.ledger_total - self.stripe_total

    def differences(self) -> list[tuple[str, int, int]]:
        """(source, ledger, Stripe) for each source whose two sides differ; a side missing
        the source shows 0."""
        sources = sorted(set(self.ledger) | set(self.stripe))
        return [
            (source, self.ledger.get(source, 0), self.stripe.get(source, 0))
            for source in sources
            if self.ledger.get(source, 0) != self.stripe.get(source, 0)
        ]


@dataclass
class Reconciliation:
    currency: str
    since: datetime
    until: datetime
    comparisons: list[Comparison]

    @property
    def balanced(self) -> bool:
        return not any(comparison.differences() for comparison in self.comparisons)

    def lines(self) -> list[str]:
        lines = [f"Card settlement {self.currency}, {self.since} to {self.until}"]
        for comparison in self.comparisons:
            lines.append(
                f"{comparison.name}: ledger {comparison.ledger_total}, "
                f"Stripe {comparison.stripe_total}, difference {comparison.difference}"
            )
            for source, ledger, stripe in comparison.differences():
                if not stripe:
                    where = "missing at Stripe"
                elif not ledger:
                    where = "missing in the ledger"
                else:
                    where = "amounts differ"
                lines.append(f"  {source}: ledger {ledger}, Stripe {stripe} ({where})")
        lines.append("balanced" if self.balanced else "NOT balanced")
        return lines


def _source(pattern: re.Pattern, *texts: str) -> str:
    for text in texts:
        found = pattern.search(text or "")
        if found:
            return found.group()
    return UNMATCHED


def _stripe_movements(currency: str, since: datetime, until: datetime, kind: str) -> dict:
    movements: dict[str, int] = defaultdict(int)
    listing = stripe_client().v1.balance_transactions.list(
        {
            "type": kind,
            "created": {"gte": int(since.timestamp()), "lt": int(until.timestamp())},
            "limit": 100,
        }
    )
    for txn in listing.auto_paging_iter():
        if txn.currency.upper() != currency:
            continue
        # Money leaving Stripe's balance is money the network is owed: the sign flips.
        movements[txn.source or UNMATCHED] -= txn.amount
    return movements


def card_settlement_reconcile(*, currency: str, since: datetime, until: datetime) -> Reconciliation:
    """Compare, for transfers made in [since, until): the captures and refunds posted on the
    card-settlement account with Stripe's `issuing_transaction` balance transactions, and the
    card holds we placed with Stripe's `issuing_authorization_hold` ones, in total and per
    Stripe id where our records carry one."""
    if not cards_enabled():
        raise CardsNotAvailable()
    currency = currency.upper()
    account = card_settlement_account(currency)
    period = {"created_at__gte": since, "created_at__lt": until}

    posted = Comparison("Captures and refunds")
    entries = Entry.objects.filter(
        account=account, **{f"transfer__{k}": v for k, v in period.items()}
    ).select_related("transfer")
    for entry in entries:
        transfer = entry.transfer
        source = _source(_TRANSACTION_ID, transfer.idempotency_key, json.dumps(transfer.metadata))
        posted.ledger[source] += entry.amount
    posted.stripe = _stripe_movements(currency, since, until, "issuing_transaction")

    held = Comparison("Holds")
    holds = Transfer.objects.filter(
        is_pending=True, credit_account=account, **period
    ).select_related("decision_hold__decision")
    for hold in holds:
        decision_hold = getattr(hold, "decision_hold", None)
        decision_key = decision_hold.decision.idempotency_key if decision_hold else ""
        source = _source(
            _AUTHORIZATION_ID, decision_key, hold.idempotency_key, json.dumps(hold.metadata)
        )
        held.ledger[source] += hold.amount
    held.stripe = _stripe_movements(currency, since, until, "issuing_authorization_hold")

    return Reconciliation(currency, since, until, [posted, held])
