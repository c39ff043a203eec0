"""authorize(): the one entry point that decides a payment, whatever the channel, and places
its holds. Channel adapters (the merchant API, the Stripe Issuing webhook) normalise their input
into an AuthorizationRequest and call it; nothing else decides a payment. The channel also hands
it what only the channel knows: the account the holds credit (the merchant's payable, or the card
network's settlement), so that the wallet never reads a channel's or another domain's models; a
channel refuses its own instrument (a merchant that is not approved) before asking. What follows
a decision (webhooks to the merchant, a message to the beneficiary) leaves one way: the
`decision_recorded` signal.

The beneficiary's wallet row is locked for the whole decision: per-period caps and the split
need a stable view of all pockets, and one wallet's payments are rare enough that queueing them
costs nothing. Holds are then placed with the ledger's guarded updates, which stay the backstop.
"""

import time
from dataclasses import asdict
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from core.errors import InsufficientFunds
from engine.decide import Outcome, PocketState, decide
from engine.periods import Usage
from engine.request import AuthorizationRequest
from engine.rules import PocketRules, merge_rules
from ledger.idempotency import run_idempotent
from ledger.models import Account
from ledger.services import hold_place
from wallet.locks import wallet_lock
from wallet.models import Card, Pocket, Wallet
from wallet.models.decisions import Decision, DecisionHold
from wallet.signals import decision_recorded
from wallet.usage import pockets_usage

# A guarded update can still fail after the decision if a sweep (revocation, expiry) took the
# money between our read and our hold, since sweeps lock the pocket, not the wallet. The
# decision is then taken again on fresh balances.
_ATTEMPTS = 3


def pocket_rules(pocket: Pocket) -> PocketRules:
    allocation = pocket.allocation
    return PocketRules.from_dict(
        merge_rules(allocation.program.rules, allocation.rules),
        valid_from=allocation.valid_from,
        valid_until=allocation.valid_until,
    )


def _instrument_refusal(wallet: Wallet, card: Card | None) -> str | None:
    if wallet.is_frozen:
        return "wallet_frozen"
    if card is not None:
        if card.status == Card.Status.FROZEN:
            return "card_frozen"
        if card.status != Card.Status.ACTIVE:
            return "card_inactive"
    return None


def pocket_states(wallet: Wallet, request: AuthorizationRequest) -> tuple[list, dict]:
    pockets = list(
        Pocket.objects.spendable()
        .filter(wallet=wallet)
        .select_related("account", "allocation__program__funder")
        .order_by("pk")
    )
    rules = {pocket.pk: pocket_rules(pocket) for pocket in pockets}
    # Every period, capped or not: the decision records them (`pockets_snapshot`) so that a
    # manager can replay it under other rules (funders/dry_runs.py); the engine reads only the
    # periods its rules cap, so the decision is the same.
    usage = pockets_usage(
        ((pocket.account_id, rules[pocket.pk]) for pocket in pockets),
        at=request.at,
        every_period=True,
    )
    states = [
        PocketState(
            pocket_id=pocket.pk,
            name=pocket.allocation.program.name,
            funder_name=pocket.allocation.program.funder.name,
            rules=rules[pocket.pk],
            available=pocket.account.available,
            currency=pocket.account.currency,
            created_at=pocket.created_at,
            usage=usage.get(pocket.account_id, Usage()),
        )
        for pocket in pockets
    ]
    return states, {pocket.pk: pocket for pocket in pockets}


def pockets_snapshot(states: list[PocketState]) -> list[dict]:
    """What each pocket had when the decision was taken (its available balance and what it had
    spent in each period), kept in the decision's trace: with the request, enough to decide the
    payment again under other rules, as it stood then."""
    return [
        {
            "pocket_id": state.pocket_id,
            "available": state.available,
            "currency": state.currency,
            "created_at": state.created_at.isoformat(),
            "usage": state.usage.spent,
        }
        for state in states
    ]


def _request_record(request: AuthorizationRequest) -> dict:
    record = asdict(request)
    if not request.lines:
        del record["lines"]  # a request without a basket is recorded (and fingerprinted) as before
    record["at"] = request.at.isoformat()
    record["departement"] = request.merchant.departement
    return record


def _decide_and_hold(
    *,
    request: AuthorizationRequest,
    wallet_id: int,
    locked: Wallet | None,
    card: Card | None,
    merchant_id: int | None,
    credit: Account,
    idempotency_key: str,
    digest: str,
    record: dict,
    merchant_reference: str,
    metadata: dict,
) -> Decision:
    started = time.perf_counter()
    wallet = locked if locked is not None else wallet_lock(wallet_id)
    refusal = _instrument_refusal(wallet, card)
    pockets: dict[int, Pocket] = {}
    states: list[PocketState] = []
    if refusal is None:
        states, pockets = pocket_states(wallet, request)
        outcome = decide(request, states)
    else:
        outcome = Outcome(
            status=Decision.Status.DECLINED,
            approved_amount=0,
            reason=refusal,
            details={},
            pocket_name=None,
            verdicts=(),
            split=(),
        )
    expires_at = request.at + timedelta(days=settings.HOLD_TTL_DAYS)
    holds = [
        (
            pockets[pocket_id],
            hold_place(
                debit=pockets[pocket_id].account,
                credit=credit,
                amount=amount,
                idempotency_key=None,  # the decision's own key makes the whole call idempotent
                expires_at=expires_at,
            ),
        )
        for pocket_id, amount in outcome.split
    ]
    decision = Decision.objects.create(
        idempotency_key=idempotency_key,
        fingerprint=digest,
        channel=request.channel,
        wallet=wallet,
        card=card,
        merchant_id=merchant_id,
        amount=request.amount,
        currency=request.currency,
        status=outcome.status,
        approved_amount=outcome.approved_amount,
        reason=outcome.reason or "",
        reason_pocket=outcome.pocket_name or "",
        details=outcome.details,
        merchant_reference=merchant_reference,
        metadata=metadata,
        request=record,
        trace=outcome.to_dict() | {"pockets": pockets_snapshot(states)},
        decided_at=timezone.now(),
        duration_us=int((time.perf_counter() - started) * 1_000_000),
    )
    DecisionHold.objects.bulk_create(
        DecisionHold(decision=decision, pocket=pocket, hold=hold, amount=hold.amount)
        for pocket, hold in holds
    )
    return decision


def authorize(
    *,
    request: AuthorizationRequest,
    wallet: Wallet,
    idempotency_key: str,
    credit_account: Account,
    card: Card | None = None,
    merchant_id: int | None = None,
    merchant_reference: str = "",
    metadata: dict | None = None,
    wallet_locked: bool = False,
) -> Decision:
    """Decide a payment and place its holds. Returns the recorded Decision, approved or not.

    `idempotency_key` must already be scoped by the caller (e.g. "api:<merchant id>:<key>"): a
    replay returns the first decision and places nothing; the same key with another request
    raises IdempotencyConflict. `credit_account` receives the holds. `decision_recorded` is sent
    once, in the decision's transaction, when the decision is first written (never on a
    replay); the Decision it wrote is returned with `recorded_now` set, so that a caller can
    answer from it without reading it back. `wallet_locked`: the caller took the wallet's lock
    in this transaction and `wallet` is the row as locked (a round trip saved on the hot path)."""
    record = _request_record(request)
    params = {
        "request": record | {"at": None},
        "wallet": wallet.pk,
        "card": card.pk if card else None,
        "merchant": merchant_id,
        "merchant_reference": merchant_reference,
        "metadata": metadata or {},
    }

    def create(digest: str) -> Decision:
        decision = _decide_and_hold(
            request=request,
            wallet_id=wallet.pk,
            locked=wallet if wallet_locked else None,
            card=card,
            merchant_id=merchant_id,
            credit=credit_account,
            idempotency_key=idempotency_key,
            digest=digest,
            record=record,
            merchant_reference=merchant_reference,
            metadata=metadata or {},
        )
        decision_recorded.send(sender=Decision, decision=decision)
        decision.recorded_now = True
        return decision

    attempt = 1
    while True:
        try:
            return run_idempotent(model=Decision, key=idempotency_key, params=params, create=create)
        except InsufficientFunds:
            if attempt == _ATTEMPTS:
                raise
            attempt += 1
