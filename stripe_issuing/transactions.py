"""What Stripe tells us after a card payment was decided: the authorization's later life
(reversals, expiries, Stripe's own declines) and the transactions that move the money (captures,
refunds).

These are facts, not requests: the network has moved the money, so nothing here is refused. A
capture larger than what is held, or with no hold at all (a force capture, a stand-in approval),
is paid in full: from the pockets that may pay this merchant while they can, and what they
cannot cover from the program's receivable account, flagged for the funder to review.

Every movement is keyed by the Stripe object it comes from (`issuing:<transaction id>:...`),
and each handler works under the wallet's lock, as authorize() does: whatever the number of
deliveries and their order, the money moves once."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.db.models import Q
from django.utils import timezone

from core.errors import InvalidState
from engine.decide import decide
from engine.request import AuthorizationRequest
from funders.models import Allocation, Program
from funders.services import capture_refund
from ledger.models import Account, Transfer
from ledger.services import (
    account_get_or_create,
    hold_expire,
    hold_post,
    hold_void,
    transfer_post,
)
from stripe_issuing.accounts import card_settlement_account
from stripe_issuing.authorizations import (
    acceptor_merchant,
    authorization_decisions,
    card_find,
    merchant_place,
    stripe_id,
)
from wallet.authorize import pocket_states
from wallet.locks import wallet_lock
from wallet.models import Pocket, Wallet
from wallet.models.decisions import Decision, DecisionHold
from wallet.services import decision_hold_release
from wallet.signals import captures_posted

# Stripe's statuses of an authorization that leave nothing held.
_RELEASED = ("reversed", "expired")


class UnknownCard(InvalidState):
    code = "unknown_card"


def receivable_account(program: Program) -> Account:
    """What the program is owed for card payments its pockets could not cover."""
    return account_get_or_create(
        code=f"program-receivable:{program.pk}",
        name=f"Receivable of program {program.pk}",
        kind=Account.Kind.PROGRAM_RECEIVABLE,
        currency=program.currency,
        guarded=False,
    )


def _request_index(decision: Decision) -> int:
    _, _, rest = decision.idempotency_key.partition(":")
    _, _, index = rest.partition(":")
    return int(index or 0)


def _live_holds(decisions: list[Decision]) -> list[DecisionHold]:
    """The holds still in force, in the order the decisions and their splits placed them."""
    return list(
        DecisionHold.objects.filter(decision__in=decisions, hold__resolution__isnull=True)
        .select_related("hold__debit_account", "hold__credit_account")
        .order_by("decision_id", "pk")
    )


def authorization_event_apply(*, event: dict) -> str:
    """`issuing_authorization.created` / `.updated`: bring our holds down to what Stripe still
    holds. Returns what it did. Only the requests this version of the authorization had
    seen count, so an old event delivered late cannot release an increment decided since."""
    authorization = event["data"]["object"]
    decisions = list(authorization_decisions(authorization["id"]).order_by("pk"))
    if not decisions:
        return "ignored: no decision of ours for this authorization"
    wallet_lock(decisions[0].wallet_id)
    seen = len(authorization.get("request_history") or []) or 1
    holds = _live_holds([d for d in decisions if _request_index(d) < seen])
    held = sum(link.hold.amount for link in holds)
    status = authorization.get("status")
    if status in _RELEASED or not authorization.get("approved", True):
        target = 0
    elif status == "pending":
        target = authorization.get("amount") or 0
    else:  # closed: the capture's transaction moves the money
        return f"ignored: authorization {status}: the transaction settles it"
    to_release = held - target
    if to_release <= 0:
        return "ignored: nothing to release"
    for link in reversed(holds):
        part = min(to_release, link.hold.amount)
        if not part:
            break
        decision_hold_release(link=link, amount=part)
        to_release -= part
    return f"{status}: released {held - target}"


def _done(key: str) -> bool:
    return Transfer.objects.filter(idempotency_key__startswith=f"{key}:").exists()


def _at(obj: dict) -> datetime:
    created = obj.get("created")
    return datetime.fromtimestamp(created, UTC) if created else timezone.now()


def _eligible_pockets(wallet: Wallet, txn: dict, amount: int, currency: str) -> list:
    """For money no authorization of ours covers: the pockets whose rules accept this merchant
    now, as the engine would split a partial approval, each with what it would pay."""
    merchant_data = txn.get("merchant_data") or {}
    try:
        request = AuthorizationRequest(
            amount=amount,
            currency=currency,
            # Our merchant's place when the shop is one of ours, as for an authorization.
            merchant=merchant_place(merchant_data, acceptor_merchant(merchant_data)),
            at=_at(txn),
            channel=Decision.Channel.CARD,
            partial_allowed=True,
        )
    except ValueError:
        return []  # merchant data the rules cannot read: no pocket can be said to accept it
    states, pockets = pocket_states(wallet, request)
    return [(pockets[pocket_id], part) for pocket_id, part in decide(request, states).split]


def _decided_pockets(decisions: list[Decision], amount: int) -> list:
    """For money beyond an authorization: the pockets that authorization used, in its split
    order, each for what it still has available (the rules accepted this merchant already)."""
    pockets = []
    for link in DecisionHold.objects.filter(decision__in=decisions).order_by("decision_id", "pk"):
        if link.pocket_id not in {pocket.pk for pocket, _ in pockets}:
            pocket = Pocket.objects.select_related("account", "allocation__program").get(
                pk=link.pocket_id
            )
            if pocket.allocation.status == Allocation.Status.ACTIVE:
                pockets.append((pocket, max(pocket.account.available, 0)))
    split = []
    for pocket, available in pockets:
        part = min(amount, available)
        if part:
            split.append((pocket, part))
            amount -= part
    return split


def _program_of(wallet: Wallet, pockets: list[Pocket]) -> Program:
    """Whose receivable takes what no pocket covers: the program of the first pocket concerned,
    else of the wallet's first active aid, else of its first aid."""
    if pockets:
        return pockets[0].allocation.program
    pockets = list(Pocket.objects.filter(wallet=wallet).select_related("allocation__program"))
    if not pockets:
        raise InvalidState(message="This wallet has no aid to charge a card payment to.")
    pockets.sort(key=lambda p: (p.allocation.status != Allocation.Status.ACTIVE, p.pk))
    return pockets[0].allocation.program


@dataclass(frozen=True)
class _Movement:
    """A capture or refund to apply, once transaction_event_apply() has found it new and locked
    its wallet: its amount in our sign (positive), its currency, the key its transfers are
    named by."""

    txn: dict
    amount: int
    currency: str
    key: str
    wallet: Wallet
    authorization_id: str | None


def _capture(movement: _Movement) -> str:
    decisions = (
        list(authorization_decisions(movement.authorization_id))
        if movement.authorization_id
        else []
    )
    now = timezone.now()
    captured, remaining = [], movement.amount
    for link in _live_holds(decisions):
        hold = link.hold
        if hold.expires_at is not None and hold.expires_at <= now:
            hold_expire(hold=hold)  # too late to post: what it held is taken below instead
            continue
        part = min(remaining, hold.amount)
        if part:
            captured.append(
                hold_post(hold=hold, amount=part, idempotency_key=f"{movement.key}:hold:{hold.pk}")
            )
        else:
            hold_void(hold=hold, idempotency_key=f"{movement.key}:void:{hold.pk}")
        remaining -= part
    outcome = f"captured {movement.amount} {movement.currency}"
    if remaining:
        split = (
            _decided_pockets(decisions, remaining)
            if decisions
            else _eligible_pockets(movement.wallet, movement.txn, remaining, movement.currency)
        )
        flag = {
            "stripe_transaction": movement.txn["id"],
            "stripe_authorization": movement.authorization_id,
        }
        settlement = card_settlement_account(movement.currency)
        for pocket, part in split:
            captured.append(
                transfer_post(
                    kind=Transfer.Kind.CAPTURE,
                    currency=movement.currency,
                    legs=[(pocket.account, -part), (settlement, part)],
                    idempotency_key=f"{movement.key}:pocket:{pocket.pk}",
                    metadata=flag | {"beyond_authorization": True},
                )
            )
            remaining -= part
        if remaining:
            program = _program_of(movement.wallet, [pocket for pocket, _ in split])
            transfer_post(
                kind=Transfer.Kind.CAPTURE,
                currency=movement.currency,
                legs=[(receivable_account(program), -remaining), (settlement, remaining)],
                idempotency_key=f"{movement.key}:receivable",
                metadata=flag | {"to_review": True},
            )
            outcome += f", {remaining} from the receivable of program {program.pk}"
    captures_posted.send(sender=Transfer, captures=captured)
    return outcome


def _refundable_captures(wallet: Wallet, authorization_id: str | None, currency: str) -> list:
    """The pocket captures a refund gives back to, newest first: the authorization's when
    Stripe links one we know (Stripe's link is a best guess), else the wallet's card payments."""
    settlement = card_settlement_account(currency)
    from_pockets = Transfer.objects.filter(
        kind=Transfer.Kind.CAPTURE,
        entries__account__pocket__wallet=wallet,
        entries__amount__lt=0,
    ).filter(entries__account=settlement)
    decisions = list(authorization_decisions(authorization_id)) if authorization_id else []
    if decisions:
        from_pockets = from_pockets.filter(
            Q(pending_transfer__decision_hold__decision__in=decisions)
            | Q(metadata__stripe_authorization=authorization_id)
        )
    return list(from_pockets.distinct().order_by("-pk")[:100])


def _refund(movement: _Movement) -> str:
    captures = _refundable_captures(movement.wallet, movement.authorization_id, movement.currency)
    remaining = movement.amount
    for capture in captures:
        refunded = sum(capture.refunds.values_list("amount", flat=True))
        part = min(remaining, capture.amount - refunded)
        if part > 0:
            capture_refund(
                capture=capture, amount=part, idempotency_key=f"{movement.key}:capture:{capture.pk}"
            )
            remaining -= part
        if not remaining:
            break
    outcome = f"refunded {movement.amount} {movement.currency}"
    if remaining:
        # Paid back for money no pocket paid (a receivable, or a capture we cannot find): the
        # program is owed that much less; flagged like the receivable itself.
        paid_from = captures[0].entries.get(amount__lt=0).account_id if captures else None
        program = _program_of(
            movement.wallet,
            list(Pocket.objects.filter(account_id=paid_from).select_related("allocation__program")),
        )
        transfer_post(
            kind=Transfer.Kind.REFUND,
            currency=movement.currency,
            legs=[
                (card_settlement_account(movement.currency), -remaining),
                (receivable_account(program), remaining),
            ],
            idempotency_key=f"{movement.key}:receivable",
            metadata={
                "stripe_transaction": movement.txn["id"],
                "stripe_authorization": movement.authorization_id,
                "to_review": True,
            },
        )
        outcome += f", {remaining} to the receivable of program {program.pk}"
    return outcome


def transaction_event_apply(*, event: dict) -> str:
    """`issuing_transaction.created`: post a capture or give a refund back. Returns what it
    did."""
    txn = event["data"]["object"]
    if txn.get("type") not in ("capture", "refund"):
        return f"ignored: transaction type {txn.get('type')}"
    card = card_find(txn.get("card"))
    if card is None:
        raise UnknownCard(
            message=f"No card of ours has the Stripe id {stripe_id(txn.get('card'))}."
        )
    # Stripe signs an amount as the Issuing balance moves: a capture takes money out of it, a
    # refund adds money to it.
    amount = -txn["amount"] if txn["type"] == "capture" else txn["amount"]
    if amount <= 0:
        return f"ignored: {txn['type']} of {txn['amount']}"
    key = f"issuing:{txn['id']}"
    wallet = wallet_lock(card.wallet_id)
    if _done(key):
        return "ignored: already done"
    movement = _Movement(
        txn=txn,
        amount=amount,
        currency=txn["currency"].upper(),
        key=key,
        wallet=wallet,
        authorization_id=stripe_id(txn.get("authorization")),
    )
    if txn["type"] == "capture":
        return _capture(movement)
    return _refund(movement)
