"""Services of the payment lifecycle on the merchant API: authorize, capture, reverse, refund.

Each operation is idempotent by its own record's key (scoped by merchant), locks the
authorization's decision row so that two operations on one payment queue, and moves money only
through the ledger. An authorization may be split over several pockets: captures take the
pockets in the order the split used them; reversals and refunds give back in the opposite
order, so the pocket used last is refilled first."""

import functools
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from django.db import IntegrityError, connections, router, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.errors import (
    ExceedsHoldAmount,
    ExceedsRefundable,
    InvalidState,
    PaymentCodeError,
)
from core.money import validate_amount
from core.one_statement import OneStatement, one_statement_available
from engine.request import AuthorizationRequest, BasketLine, MerchantPlace
from funders.services import capture_refund
from ledger.idempotency import fingerprint, run_idempotent
from ledger.models import Transfer
from ledger.services import (
    hold_expire,
    hold_post,
    hold_void,
    holds_resolve_in,
    refunds_post_in,
)
from merchants.events import EventType
from merchants.hot_path import captures_read, holds_read
from merchants.models import Capture, Merchant, Refund, Reversal
from merchants.services import merchant_ensure_active
from merchants.webhooks import webhook_event_emit
from wallet.authorize import authorize, authorize_by_code
from wallet.locks import wallet_lock
from wallet.models.decisions import Decision, DecisionHold
from wallet.payment_codes import payment_code_redeem
from wallet.services import decision_hold_release
from wallet.signals import captures_posted


# Both name the authorization as the request does: by the reference in its path.
class AuthorizationNotCapturable(InvalidState):
    code = "authorization_not_capturable"
    default_message = _(
        "Nothing is held on this authorization: it was declined, captured, reversed or has expired."
    )

    def __init__(self) -> None:
        super().__init__(field="reference")


class AuthorizationAlreadyCaptured(InvalidState):
    code = "authorization_already_captured"
    default_message = _("This authorization was already captured.")

    def __init__(self) -> None:
        super().__init__(field="reference")


def merchant_place(merchant: Merchant) -> MerchantPlace:
    """The registered, approved place and category of a merchant: the only ones the engine
    uses on the API channel."""
    return MerchantPlace(
        name=merchant.trade_name,
        mcc=merchant.mcc,
        country=merchant.country,
        merchant_id=merchant.pk,
        postcode=merchant.postcode or None,
        commune_code=merchant.commune_code or None,
        latitude=float(merchant.latitude) if merchant.latitude is not None else None,
        longitude=float(merchant.longitude) if merchant.longitude is not None else None,
    )


def basket_lines(lines: list[dict] | None) -> tuple[BasketLine, ...]:
    """The basket lines of a request, validated by the caller (amount > 0, a known family,
    adding up to the amount)."""
    return tuple(BasketLine(line["amount"], line["category"]) for line in lines or ())


def authorization_request(
    *,
    merchant: Merchant,
    amount: int,
    currency: str,
    partial_approval_allowed: bool,
    lines: list[dict] | None,
    at: datetime,
) -> AuthorizationRequest:
    """What the engine decides for a payment on the API channel, live or sandbox (sandbox.py):
    the merchant's registered place, never one the request names."""
    return AuthorizationRequest(
        amount=amount,
        currency=currency,
        merchant=merchant_place(merchant),
        at=at,
        channel=Decision.Channel.API,
        partial_allowed=partial_approval_allowed,
        lines=basket_lines(lines),
    )


def scoped_key(space: str, merchant: Merchant, key: str | None) -> str:
    """The idempotency key of a merchant's call in `space` ("api" live, "sandbox" for a test
    key: a live and a test call never share a record). Without a key the client cannot retry
    safely; each call is then an operation of its own."""
    return f"{space}:{merchant.pk}:{key or 'auto:' + uuid.uuid4().hex}"


def amount_taken(held: int, amount: int | None) -> int:
    """What a capture or a reversal takes of what an authorization still holds: `amount`, or
    all of it when None. The one rule of live and sandbox payments."""
    if not held:
        raise AuthorizationNotCapturable()
    if amount is not None and amount > held:
        raise ExceedsHoldAmount(field="amount", held=held)
    return held if amount is None else amount


def refundable_check(refundable: int, amount: int) -> None:
    """A refund gives back at most what was captured less what was refunded, live or sandbox."""
    if amount > refundable:
        raise ExceedsRefundable(field="amount", refundable=refundable)


def payment_authorize(
    *,
    merchant: Merchant,
    amount: int,
    currency: str,
    payment_code: str,
    partial_approval_allowed: bool = False,
    capture: bool = False,
    merchant_reference: str = "",
    metadata: dict | None = None,
    idempotency_key: str | None = None,
    lines: list[dict] | None = None,
    writes: OneStatement | None = None,
) -> Decision:
    """Authorize a payment at a merchant on the API channel, paid with a one-time payment code
    from the beneficiary's app; with `capture`, capture what was approved in the same
    transaction (a one-step purchase).

    A payment code is the only instrument here: it is shown by the beneficiary at the till and
    dies after one use. A card pays through the card network (stripe_issuing/), never by its
    reference, which is no secret and would let anyone who learns it charge the card.

    `writes` (PostgreSQL only): a new payment that the code can pay, without capture, is
    written into it (wallet.authorize.authorize_by_code) for the caller to run as one statement;
    the Decision returned is then unsaved until it runs. Anything else is written here."""
    # Before the code is redeemed: a code is never burnt by a merchant that cannot be paid.
    merchant_ensure_active(merchant=merchant)
    request = authorization_request(
        merchant=merchant,
        amount=amount,
        currency=currency,
        partial_approval_allowed=partial_approval_allowed,
        lines=lines,
        at=timezone.now(),
    )
    key = scoped_key("api", merchant, idempotency_key)
    refused: PaymentCodeError | None = None
    # No savepoint of its own (two round trips): a refused code ends the block normally, and any
    # other error must roll back the caller's transaction too.
    with transaction.atomic(savepoint=False):
        if writes is not None and not capture:
            fast = authorize_by_code(
                writes,
                request=request,
                code=payment_code,
                idempotency_key=key,
                credit_account=merchant.payable_account,
                merchant_id=merchant.pk,
                merchant_reference=merchant_reference,
                metadata=metadata or {},
            )
            if fast is not None:
                return fast
        try:
            wallet = payment_code_redeem(
                code=payment_code,
                amount=amount,
                currency=currency,
                idempotency_key=key,
                merchant=merchant,
            ).wallet
        except PaymentCodeError as error:
            # Raised after the block commits: a wrong guess must stay counted.
            refused = error
        if refused is None:
            decision = authorize(
                request=request,
                wallet=wallet,
                credit_account=merchant.payable_account,
                merchant_id=merchant.pk,
                idempotency_key=key,
                # payment_code_redeem locked it in this transaction; a retry's code (used
                # with this key) has its decision committed with it, which authorize() returns
                # before it would lock anything.
                wallet_locked=True,
                merchant_reference=merchant_reference,
                metadata=metadata or {},
            )
            if capture and decision.approved_amount:
                _capture(decision=decision, amount=None, idempotency_key=f"{key}:capture")
    if refused is not None:
        raise refused
    return decision


def _locked_holds(decision: Decision) -> list[DecisionHold]:
    """The holds still in force, in split order. A hold past its expiry counts as gone even
    before the expiry task has released it: it can no longer be captured."""
    wallet_lock(decision.wallet_id)
    return list(
        decision.holds.select_related("hold__debit_account", "hold__credit_account")
        .filter(hold__resolution__isnull=True)
        .filter(Q(hold__expires_at__isnull=True) | Q(hold__expires_at__gt=timezone.now()))
        .order_by("pk")
    )


def _from_held(holds: list[DecisionHold], amount: int | None) -> int:
    return amount_taken(sum(link.hold.amount for link in holds), amount)


def payment_capture(
    *,
    merchant: Merchant,
    decision: Decision,
    idempotency_key: str | None,
    amount: int | None = None,
    writes: OneStatement | None = None,
) -> Capture:
    """Capture an authorization, whole or in part (amount ≤ what is held); what is not captured
    is released to the pockets. One capture per authorization.

    `writes` (PostgreSQL only): a capture of what is held is written into it for the caller to
    run as one statement, the Capture returned unsaved until it runs; anything else (a replay,
    a refusal) is answered here, through the ORM."""
    _own(merchant, decision)
    return _capture(
        decision=decision,
        amount=amount,
        idempotency_key=scoped_key("api", merchant, idempotency_key),
        writes=writes,
    )


def _capture(
    *,
    decision: Decision,
    amount: int | None,
    idempotency_key: str,
    writes: OneStatement | None = None,
) -> Capture:
    if amount is not None:
        validate_amount(amount)
    params = {"decision": decision.pk, "amount": amount}
    if writes is not None:
        fast = _capture_in(
            writes,
            decision=decision,
            amount=amount,
            key=idempotency_key,
            digest=fingerprint(params),
        )
        if fast is not None:
            return fast

    def create(digest: str) -> Capture:
        holds = _locked_holds(decision)
        if decision.captures.exists():
            raise AuthorizationAlreadyCaptured()
        wanted = _from_held(holds, amount)
        remaining = wanted
        posted = []
        for link in holds:
            part = min(remaining, link.hold.amount)
            if part:
                posted.append(hold_post(hold=link.hold, amount=part, idempotency_key=None))
            else:
                hold_void(hold=link.hold, idempotency_key=None)
            remaining -= part
        capture = Capture(
            decision=decision, amount=wanted, idempotency_key=idempotency_key, fingerprint=digest
        )
        _captured(decision, capture, posted, writes=None)
        return capture

    return run_idempotent(model=Capture, key=idempotency_key, params=params, create=create)


def _capture_in(
    writes: OneStatement, *, decision: Decision, amount: int | None, key: str, digest: str
) -> Capture | None:
    """The capture in `writes`: the wallet's lock and one read in one message
    (merchants/hot_path.py), one write.
    None, with nothing written, when the ORM's path must answer: a capture recorded under the key
    (a replay, or a conflict), a decision captured already, nothing held, more asked than held."""
    read = holds_read(
        wallet_id=decision.wallet_id, decision_id=decision.pk, key=key, at=timezone.now()
    )
    if read.replay or read.captured:
        return None
    try:
        wanted = amount_taken(sum(hold.amount for hold in read.holds), amount)
    except (AuthorizationNotCapturable, ExceedsHoldAmount):
        return None  # the ORM's path raises it again, from the same rule
    remaining = wanted
    resolutions = []
    for hold in read.holds:
        part = min(remaining, hold.amount)
        resolutions.append((hold, part))
        remaining -= part
    posted = holds_resolve_in(writes, resolutions)
    capture = Capture(decision=decision, amount=wanted, idempotency_key=key, fingerprint=digest)
    _captured(decision, capture, posted, writes=writes)
    return capture


def _captured(
    decision: Decision, capture: Capture, posted: list[Transfer], *, writes: OneStatement | None
) -> None:
    """What both paths write after the money: the capture, its event, its notices."""
    operation_record(decision, capture, writes=writes)
    captures_posted.send(sender=Transfer, captures=posted, writes=writes)


# Each operation's webhook event and the name of its object there.
_OPERATION_EVENTS = {
    Capture: (EventType.PAYMENT_CAPTURED, "capture"),
    Reversal: (EventType.AUTHORIZATION_REVERSED, "reversal"),
    Refund: (EventType.REFUND_SUCCEEDED, "refund"),
}


def operation_record(
    decision: Decision,
    operation: Capture | Reversal | Refund,
    writes: OneStatement | None = None,
) -> None:
    """Write a capture, reversal or refund of `decision` and tell the merchant's webhooks of it,
    live or sandbox (sandbox.py): one record and one event for both. With `writes`, the
    operation's one statement, both go in it."""
    if writes is None:
        operation.save(force_insert=True)
    else:
        writes.insert(operation)
    event_type, object_name = _OPERATION_EVENTS[type(operation)]
    _announce_operation(decision, event_type, operation, object_name, writes=writes)


# Tries of an operation's one statement (see operation_committed).
_ATTEMPTS = 3
_Operation = TypeVar("_Operation", Capture, Reversal, Refund)


def operation_committed(operate: Callable[[OneStatement | None], _Operation]) -> _Operation:
    """`operate(writes)`, a live capture, reversal or refund, in a transaction of its own, written
    as the merchant API writes it: on PostgreSQL the capture's or refund's writes go in `writes`
    (core/one_statement.py), run here before the commit; elsewhere `writes` is None and the ORM's
    path writes. For the till (shop/), which stores no answer of its own; the API's views do the
    same around the answer they store (merchant_api/operations.py).

    A conflict of the one statement (a call under the same key committed first, or a hold
    resolved without the wallet's lock) rolls it back whole; the operation then runs again and
    finds that call's operation under its key, or fresh rows."""
    attempt = 1
    while True:
        writes = OneStatement() if one_statement_available() else None
        try:
            with transaction.atomic():
                operation = operate(writes)
                if writes is not None:
                    writes.run()
                return operation
        except IntegrityError:
            # The ORM's path settles its races in run_idempotent: only the one statement's get
            # here.
            if writes is None or attempt == _ATTEMPTS:
                raise
            attempt += 1


def payment_reverse(
    *,
    merchant: Merchant,
    decision: Decision,
    idempotency_key: str | None,
    amount: int | None = None,
) -> Reversal:
    """Release an uncaptured authorization, whole (amount None) or in part; a partial reversal
    leaves the rest held for a later capture."""
    if amount is not None:
        validate_amount(amount)
    _own(merchant, decision)
    key = scoped_key("api", merchant, idempotency_key)

    def release() -> tuple[Decision, int]:
        holds = _locked_holds(decision)
        wanted = _from_held(holds, amount)
        remaining = wanted
        for link in reversed(holds):
            part = min(remaining, link.hold.amount)
            if not part:
                break
            decision_hold_release(link=link, amount=part)
            remaining -= part
        return decision, wanted

    return operation_run(Reversal, decision=decision, key=key, amount=amount, take=release)


def operation_run(
    model: type[_Operation],
    *,
    decision: Decision,
    key: str,
    amount: int | None,
    take: Callable[[], tuple[Decision, int]],
    reason: str | None = None,
) -> _Operation:
    """A capture, reversal or refund of `decision` made once under `key` (run_idempotent: a
    retry gets the first, other parameters a conflict), live or sandbox (sandbox.py): `take()`
    applies the operation's rules and moves what must move (the live money; nothing in the
    sandbox), and gives the decision as it locked it and the amount taken; the operation is
    then recorded and announced by operation_record()."""
    params: dict = {"decision": decision.pk, "amount": amount}
    fields = {}
    if reason is not None:
        params["reason"] = fields["reason"] = reason

    def create(digest: str) -> _Operation:
        locked, taken = take()
        operation = model(
            decision=locked,
            amount=taken,
            livemode=locked.livemode,
            idempotency_key=key,
            fingerprint=digest,
            **fields,
        )
        operation_record(locked, operation)
        return operation

    return run_idempotent(model=model, key=key, params=params, create=create)


def payment_refund(
    *,
    merchant: Merchant,
    decision: Decision,
    amount: int,
    idempotency_key: str | None,
    reason: str = "",
    writes: OneStatement | None = None,
) -> Refund:
    """Refund up to what was captured minus what was already refunded. The money returns to the
    pockets it came from, or to the program where a pocket's aid has ended.

    `writes` (PostgreSQL only): a refund within what is refundable is written into it for the
    caller to run as one statement, the Refund returned unsaved until it runs; anything else (a
    replay, a refusal) is answered here, through the ORM."""
    validate_amount(amount)
    _own(merchant, decision)
    key = scoped_key("api", merchant, idempotency_key)
    params = {"decision": decision.pk, "amount": amount, "reason": reason}
    if writes is not None:
        fast = _refund_in(
            writes,
            decision=decision,
            amount=amount,
            reason=reason,
            key=key,
            digest=fingerprint(params),
        )
        if fast is not None:
            return fast

    def create(digest: str) -> Refund:
        wallet_lock(decision.wallet_id)
        captures = decision_captures(decision)
        refundable_check(sum(c.amount - (c.refunded or 0) for c in captures), amount)
        remaining = amount
        for capture in captures:
            part = min(remaining, capture.amount - (capture.refunded or 0))
            if part:
                capture_refund(capture=capture, amount=part, idempotency_key=None)
                remaining -= part
        refund = Refund(
            decision=decision,
            amount=amount,
            reason=reason,
            idempotency_key=key,
            fingerprint=digest,
        )
        _refunded(decision, refund, writes=None)
        return refund

    return run_idempotent(model=Refund, key=key, params=params, create=create)


def _refund_in(
    writes: OneStatement, *, decision: Decision, amount: int, reason: str, key: str, digest: str
) -> Refund | None:
    """The refund in `writes`: the wallet's lock and one read in one message
    (merchants/hot_path.py), one write.
    None, with nothing written, when the ORM's path must answer: a refund recorded under the key
    (a replay, or a conflict), more asked than is refundable, a capture paid to a guarded
    account (whose debit refund_post() guards)."""
    read = captures_read(wallet_id=decision.wallet_id, decision_id=decision.pk, key=key)
    if read.replay or any(state.paid_to.guarded for state in read.captures):
        return None
    try:
        refundable_check(
            sum(state.transfer.amount - state.refunded for state in read.captures), amount
        )
    except ExceedsRefundable:
        return None  # the ORM's path raises it again, from the same rule
    remaining = amount
    refunds = []
    for state in read.captures:
        part = min(remaining, state.transfer.amount - state.refunded)
        if part:
            refunds.append((state.transfer, part, state.paid_to, state.to))
            remaining -= part
    refunds_post_in(writes, refunds)
    refund = Refund(
        decision=decision, amount=amount, reason=reason, idempotency_key=key, fingerprint=digest
    )
    _refunded(decision, refund, writes=writes)
    return refund


def _refunded(decision: Decision, refund: Refund, *, writes: OneStatement | None) -> None:
    """What both paths write after the money: the refund and its event."""
    operation_record(decision, refund, writes=writes)


def decision_captures(decision: Decision) -> list[Transfer]:
    """The capture transfers of a decision's holds, newest first, each with what was refunded of
    it (`refunded`, None when nothing was). One statement written once per process, not a
    grouped, three-join queryset compiled at each refund (issue 19)."""
    alias = router.db_for_write(Transfer)
    return list(Transfer.objects.db_manager(alias).raw(_captures_sql(alias), [decision.pk]))


@functools.cache
def _captures_sql(alias: str) -> str:
    quote = connections[alias].ops.quote_name
    transfer, link = Transfer._meta, DecisionHold._meta

    def column(meta, name: str) -> str:
        return quote(meta.get_field(name).column)

    columns = ", ".join(f"t.{quote(field.column)}" for field in transfer.concrete_fields)
    return (
        # PostgreSQL sums bigints as numeric: cast back, amounts are integers of minor units.
        f"SELECT {columns}, CAST((SELECT SUM(r.{column(transfer, 'amount')}) "
        f"FROM {quote(transfer.db_table)} r "
        f"WHERE r.{column(transfer, 'refund_of')} = t.{column(transfer, 'id')}) AS BIGINT) "
        "AS refunded "
        f"FROM {quote(transfer.db_table)} t JOIN {quote(link.db_table)} h "
        f"ON h.{column(link, 'hold')} = t.{column(transfer, 'pending_transfer')} "
        f"WHERE t.{column(transfer, 'kind')} = '{Transfer.Kind.CAPTURE.value}' "
        f"AND h.{column(link, 'decision')} = %s ORDER BY t.{column(transfer, 'id')} DESC"
    )


def authorization_expire(*, decision: Decision) -> int:
    """Release the holds of an authorization the merchant neither captured nor reversed in
    time (HOLD_TTL_DAYS), and tell the merchant once nothing is held any more. Returns how many
    holds it released; running it again releases nothing and announces nothing."""
    with transaction.atomic():
        wallet_lock(decision.wallet_id)
        pending = list(decision.holds.select_related("hold").filter(hold__resolution__isnull=True))
        now = timezone.now()
        due = [link for link in pending if link.hold.expires_at and link.hold.expires_at <= now]
        for link in due:
            hold_expire(hold=link.hold)
        if due and len(due) == len(pending):
            authorization_announce(decision, EventType.AUTHORIZATION_EXPIRED)
    return len(due)


def authorization_expirable(*, limit: int) -> list[Decision]:
    """Merchant API authorizations with a hold whose time is up."""
    return list(
        Decision.objects.filter(
            channel=Decision.Channel.API,
            holds__hold__resolution__isnull=True,
            holds__hold__expires_at__lte=timezone.now(),
        )
        .select_related("merchant")
        .distinct()[:limit]
    )


DECISION_EVENTS = {
    Decision.Status.APPROVED: EventType.AUTHORIZATION_APPROVED,
    Decision.Status.PARTIALLY_APPROVED: EventType.AUTHORIZATION_PARTIALLY_APPROVED,
    Decision.Status.DECLINED: EventType.AUTHORIZATION_DECLINED,
}


def basket_data(decision: Decision) -> dict | None:
    """The basket of a decision, from what the decision recorded (its trace): what the aid paid
    of each line, the eligible subtotal, each aid's share with its funder, the rest to pay
    another way. None when the payment had no basket lines. The one shape of the API's answer
    and of the webhooks' authorization."""
    trace = decision.trace or {}
    if "lines" not in trace:
        return None
    lines = [
        {
            "amount": line["amount"],
            "category": line["category"],
            "paid_amount": paid,
            "rest_amount": line["amount"] - paid,
        }
        for line in trace["lines"]
        for paid in [sum(part["amount"] for part in line["paid"])]
    ]
    return {
        "eligible_amount": trace["eligible_amount"],
        "rest_amount": decision.amount - decision.approved_amount,
        "lines": lines,
        "shares": [
            {"aid": s["aid"], "funder": s["funder"], "amount": s["amount"]}
            for s in trace.get("shares", [])
        ],
    }


def authorization_data(decision: Decision) -> dict:
    return {
        "object": "authorization",
        "id": decision.reference,
        "livemode": decision.livemode,
        "status": decision.status,
        "amount": decision.amount,
        "approved_amount": decision.approved_amount,
        "currency": decision.currency,
        "decline_code": decision.reason or None,
        "merchant_reference": decision.merchant_reference,
        "metadata": decision.metadata,
        "basket": basket_data(decision),
    }


def authorization_announce(
    decision: Decision, event_type: str, writes: OneStatement | None = None
) -> None:
    """Tell the merchant's endpoints of the decision's mode (live or test) what became of an
    authorization, in the one shape of authorization_data()."""
    webhook_event_emit(
        merchant_id=decision.merchant_id,
        livemode=decision.livemode,
        event_type=event_type,
        data=authorization_data(decision),
        writes=writes,
    )


def decision_announce(
    sender, *, decision: Decision, writes: OneStatement | None = None, **kwargs
) -> None:
    """Tell the merchant of a decision taken on its API (connected to decision_recorded; with
    `writes`, the authorization's one statement, the event goes in it)."""
    if decision.channel != Decision.Channel.API or decision.merchant_id is None:
        return
    authorization_announce(decision, DECISION_EVENTS[decision.status], writes=writes)


def _announce_operation(
    decision: Decision,
    event_type: str,
    operation,
    object_name: str,
    writes: OneStatement | None = None,
) -> None:
    """Tell the merchant's webhooks, from inside the operation's transaction: the delivery
    leaves only if the money moved (see merchants/webhooks.py). With `writes`, the operation's
    one statement, the event goes in it."""
    webhook_event_emit(
        merchant_id=decision.merchant_id,
        livemode=decision.livemode,
        event_type=event_type,
        data={
            "object": object_name,
            "id": operation.reference,
            "livemode": decision.livemode,
            "amount": operation.amount,
            "currency": decision.currency,
            "authorization": authorization_data(decision),
        },
        writes=writes,
    )


def _own(merchant: Merchant, decision: Decision) -> None:
    # The views only find a merchant's own decisions; this keeps the services safe on their own.
    if decision.merchant_id != merchant.pk:
        raise InvalidState(
            message="This authorization belongs to another merchant.", field="reference"
        )
    if not decision.livemode:
        # A sandbox authorization holds no money: merchants/sandbox.py handles it.
        raise InvalidState(message="This is a test authorization.", field="reference")
    if decision.channel != Decision.Channel.API:
        raise InvalidState(
            message=_("This payment was made by card: the card network captures and refunds it."),
            field="reference",
        )
