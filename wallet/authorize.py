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
from dataclasses import fields, is_dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.errors import InsufficientFunds
from core.one_statement import OneStatement, new_row, one_statement_available
from engine.decide import Outcome, PocketState, decide
from engine.periods import Usage
from engine.request import AuthorizationRequest
from engine.rules import PocketRules, merge_rules
from ledger.idempotency import fingerprint, run_idempotent
from ledger.models import Account
from ledger.services import hold_place, hold_place_in
from wallet import hot_path
from wallet.locks import wallet_lock
from wallet.models import Card, Pocket, Wallet
from wallet.models.decisions import Decision, DecisionHold
from wallet.models.payment_codes import SLOT_DIGITS
from wallet.payment_codes import (
    MAX_FAILED_ATTEMPTS,
    lockout_period,
    payment_code_fits,
    payment_code_normalize,
    payment_code_used_sql,
)
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


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(field.name for field in fields(cls))


def _as_record(value: Any) -> Any:
    """dataclasses.asdict() of the request, the same dicts and tuples, without its deep copy of
    every value: the request's values are immutable (str, int, float, bool, None, an aware
    datetime) and its dataclasses frozen. asdict took 0.10 ms a payment, this 0.03 (issue 19),
    copying a datetime and the merchant's place field by field."""
    if is_dataclass(value):
        return {name: _as_record(getattr(value, name)) for name in _field_names(type(value))}
    if isinstance(value, tuple):
        return tuple(_as_record(item) for item in value)
    return value


def _request_record(request: AuthorizationRequest) -> dict:
    record = _as_record(request)
    if not request.lines:
        del record["lines"]  # a request without a basket is recorded (and fingerprinted) as before
    record["at"] = request.at.isoformat()
    record["departement"] = request.merchant.departement
    return record


def _outcome(
    wallet: Wallet, card: Card | None, request: AuthorizationRequest, states: list[PocketState]
) -> Outcome:
    refusal = _instrument_refusal(wallet, card)
    if refusal is None:
        return decide(request, states)
    return Outcome(
        status=Decision.Status.DECLINED,
        approved_amount=0,
        reason=refusal,
        details={},
        pocket_name=None,
        verdicts=(),
        split=(),
    )


def _decision(
    *,
    request: AuthorizationRequest,
    outcome: Outcome,
    states: list[PocketState],
    wallet: Wallet,
    card: Card | None,
    merchant_id: int | None,
    idempotency_key: str,
    digest: str,
    record: dict,
    merchant_reference: str,
    metadata: dict,
    started: float,
) -> Decision:
    """The decision's row, not saved yet."""
    return new_row(
        Decision,
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


def _hold_expiry(request: AuthorizationRequest):
    return request.at + timedelta(days=settings.HOLD_TTL_DAYS)


def _decide_and_hold(
    *,
    request: AuthorizationRequest,
    wallet_id: int,
    locked: Wallet | None,
    card: Card | None,
    credit: Account,
    **fields,
) -> Decision:
    started = time.perf_counter()
    wallet = locked if locked is not None else wallet_lock(wallet_id)
    pockets: dict[int, Pocket] = {}
    states: list[PocketState] = []
    if _instrument_refusal(wallet, card) is None:
        states, pockets = pocket_states(wallet, request)
    outcome = _outcome(wallet, card, request, states)
    holds = [
        (
            pockets[pocket_id],
            hold_place(
                debit=pockets[pocket_id].account,
                credit=credit,
                amount=amount,
                idempotency_key=None,  # the decision's own key makes the whole call idempotent
                expires_at=_hold_expiry(request),
            ),
        )
        for pocket_id, amount in outcome.split
    ]
    decision = _decision(
        request=request,
        outcome=outcome,
        states=states,
        wallet=wallet,
        card=card,
        started=started,
        **fields,
    )
    decision.save()
    DecisionHold.objects.bulk_create(
        DecisionHold(decision=decision, pocket=pocket, hold=hold, amount=hold.amount)
        for pocket, hold in holds
    )
    return decision


def _params(
    record: dict,
    wallet_id: int,
    card: Card | None,
    merchant_id: int | None,
    merchant_reference: str,
    metadata: dict | None,
) -> dict:
    # What a replay must repeat to be one (ledger/idempotency.py's fingerprint).
    return {
        "request": record | {"at": None},
        "wallet": wallet_id,
        "card": card.pk if card else None,
        "merchant": merchant_id,
        "merchant_reference": merchant_reference,
        "metadata": metadata or {},
    }


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
    params = _params(record, wallet.pk, card, merchant_id, merchant_reference, metadata)

    def create(digest: str) -> Decision:
        decision = _decide_and_hold(
            request=request,
            wallet_id=wallet.pk,
            locked=wallet if wallet_locked else None,
            card=card,
            credit=credit_account,
            merchant_id=merchant_id,
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


def _decide_into(
    writes: OneStatement,
    *,
    request: AuthorizationRequest,
    wallet: Wallet,
    card: Card | None,
    states: list[PocketState],
    accounts: dict[int, hot_path.PocketAccount],
    credit_account: Account,
    merchant_id: int | None,
    idempotency_key: str,
    merchant_reference: str,
    metadata: dict,
    started: float,
) -> Decision:
    """The fast paths' decision on what one read under the wallet's lock found (`states`, the
    pockets' `accounts`): its holds, the decision and its holds added to `writes`, as
    _decide_and_hold() saves them on the portable path. The Decision is returned unsaved."""
    # A refused instrument records no pockets, as on the portable path (_decide_and_hold).
    states = states if _instrument_refusal(wallet, card) is None else []
    outcome = _outcome(wallet, card, request, states)
    holds = [
        (
            pocket_id,
            hold_place_in(
                writes,
                debit=accounts[pocket_id].account(),
                credit=credit_account,
                amount=amount,
                expires_at=_hold_expiry(request),
            ),
        )
        for pocket_id, amount in outcome.split
    ]
    record = _request_record(request)
    decision = _decision(
        request=request,
        outcome=outcome,
        states=states,
        wallet=wallet,
        card=card,
        merchant_id=merchant_id,
        idempotency_key=idempotency_key,
        digest=fingerprint(
            _params(record, wallet.pk, card, merchant_id, merchant_reference, metadata)
        ),
        record=record,
        merchant_reference=merchant_reference,
        metadata=metadata,
        started=started,
    )
    writes.insert(decision)
    for pocket_id, hold in holds:
        writes.insert(
            new_row(
                DecisionHold, decision=decision, pocket_id=pocket_id, hold=hold, amount=hold.amount
            )
        )
    return decision


def authorize_by_code(
    writes: OneStatement,
    *,
    request: AuthorizationRequest,
    code: str,
    idempotency_key: str,
    credit_account: Account,
    merchant_id: int,
    merchant_reference: str = "",
    metadata: dict | None = None,
) -> Decision | None:
    """payment_code_redeem() then authorize(), on PostgreSQL, in one round trip of two reads
    (wallet/hot_path.py) and no write: the code's redemption, the holds, the decision and what
    `decision_recorded`'s receivers write are added to `writes`, which the caller runs as one
    statement, with its own rows (the stored answer), in the same transaction. The Decision is
    returned unsaved, with `recorded_now`; its id is set when `writes` has run.

    Only for a new payment with a code that can pay: None for anything else (no usable code in
    the slot, a wrong secret, a locked merchant, an expired or used code, a retry), having
    locked the wallet at most; the caller then takes the portable path, which answers it.
    A concurrent first call under the same key is not looked for (the merchant API's own
    idempotency found no answer under it just before): its commit makes `writes` fail on the
    decision's unique key, and the caller's retry finds its answer."""
    started = time.perf_counter()
    digits = payment_code_normalize(code)
    now = timezone.now()
    locked = hot_path.lock_and_read_by_slot(
        slot=digits[:SLOT_DIGITS],
        merchant_id=merchant_id,
        at=request.at,
        since=now - lockout_period(),
        tries=MAX_FAILED_ATTEMPTS,
    )
    if locked is None:
        return None
    wallet, read = locked
    if (
        read.code is None
        or read.merchant_locked
        or not payment_code_fits(
            read.code, code=digits, amount=request.amount, currency=request.currency, now=now
        )
    ):
        return None
    writes.sql(*payment_code_used_sql(read.code, idempotency_key=idempotency_key, now=now))
    decision = _decide_into(
        writes,
        request=request,
        wallet=wallet,
        card=None,
        states=read.states,
        accounts=read.accounts,
        credit_account=credit_account,
        merchant_id=merchant_id,
        idempotency_key=idempotency_key,
        merchant_reference=merchant_reference,
        metadata=metadata or {},
        started=started,
    )
    decision_recorded.send(sender=Decision, decision=decision, writes=writes)
    decision.recorded_now = True
    return decision


def authorize_card(
    *,
    request: AuthorizationRequest,
    card: Card,
    idempotency_key: str,
    credit_account: Account,
    merchant_id: int | None = None,
    merchant_reference: str = "",
    metadata: dict | None = None,
) -> Decision:
    """authorize() for a card payment, inside the caller's transaction. On PostgreSQL a new
    payment takes four statements (the wallet's lock, one read under it, one write in a
    savepoint); a replay, or a write that finds a balance taken by a sweep since the read,
    goes to authorize(), which answers the one and decides the other again."""
    if one_statement_available():
        decision = _authorize_card_in_one_statement(
            request=request,
            card=card,
            idempotency_key=idempotency_key,
            credit_account=credit_account,
            merchant_id=merchant_id,
            merchant_reference=merchant_reference,
            metadata=metadata or {},
        )
        if decision is not None:
            return decision
    return authorize(
        request=request,
        wallet=card.wallet,
        card=card,
        credit_account=credit_account,
        merchant_id=merchant_id,
        idempotency_key=idempotency_key,
        merchant_reference=merchant_reference,
        metadata=metadata,
    )


def _authorize_card_in_one_statement(
    *,
    request: AuthorizationRequest,
    card: Card,
    idempotency_key: str,
    credit_account: Account,
    merchant_id: int | None,
    merchant_reference: str,
    metadata: dict,
) -> Decision | None:
    started = time.perf_counter()
    wallet, read = hot_path.lock_and_read_card(
        wallet_id=card.wallet_id, card_id=card.pk, key=idempotency_key, at=request.at
    )
    if read.decided:
        return None
    card.status = read.card_status  # as it is under the lock: a freeze takes the lock too
    writes = OneStatement()
    decision = _decide_into(
        writes,
        request=request,
        wallet=wallet,
        card=card,
        states=read.states,
        accounts=read.accounts,
        credit_account=credit_account,
        merchant_id=merchant_id,
        idempotency_key=idempotency_key,
        merchant_reference=merchant_reference,
        metadata=metadata,
        started=started,
    )
    try:
        # The receivers' own writes and after-commit tasks go with the statement: a savepoint
        # rolled back takes them too (Django drops the on_commit callbacks registered in it).
        with transaction.atomic():
            decision_recorded.send(sender=Decision, decision=decision, writes=writes)
            writes.run()
    except IntegrityError:
        # An account's CHECK: a sweep took money between the read and the write.
        return None
    decision.recorded_now = True
    return decision
