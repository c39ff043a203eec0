"""The sandbox: what a test key (`sk_test_...`) does on the merchant API. It never reaches a
beneficiary, a wallet, a pocket, the ledger, a settlement or a live webhook endpoint.

A test key pays with the documented test payment codes below. Each names the aid a sandbox
beneficiary would hold (its balance and rules), and the real engine (engine.decide) decides the
payment at the merchant's registered place with those rules: the answers, decline codes and
messages are the ones live payments get. The decision is recorded like a live one, with
`livemode` false and no wallet; captures, reversals and refunds of it follow the live rules
(capture once, the rest released; refund up to what was captured) on the decision's own numbers,
since no money moves. Events go to the merchant's test endpoints only.

Sandbox rows live in the same tables as live ones, marked `livemode=False`; every merchant API
query is scoped by the key's mode, so a live id answers 404 to a test key and the reverse. They
hold no ledger row, so `ledger verify` and the operator's reconciliation never see them."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from core.errors import (
    InvalidState,
    PaymentCodeAmountExceeded,
    PaymentCodeError,
    PaymentCodeExpired,
    PaymentCodeInvalid,
    PaymentCodeUsed,
)
from core.money import validate_amount
from engine import geo
from engine.decide import Outcome, PocketState, decide
from engine.periods import Usage
from engine.rules import PocketRules
from ledger.idempotency import run_idempotent
from merchants.events import EventType
from merchants.models import Capture, Merchant, Refund, Reversal
from merchants.payments import (
    DECISION_EVENTS,
    AuthorizationAlreadyCaptured,
    amount_taken,
    authorization_announce,
    authorization_request,
    merchant_place,
    operation_run,
    refundable_check,
    scoped_key,
)
from merchants.services import merchant_ensure_active
from wallet.models.decisions import Decision
from wallet.payment_codes import payment_code_normalize

SANDBOX_AID = 50_000  # minor units held by the approving test code: 500.00 EUR
SANDBOX_SMALL_AID = 1_000  # the partially approving code's aid: 10.00 EUR
SANDBOX_PER_PAYMENT = 100  # the per-payment limit of the limit_exceeded code: 1.00 EUR
SANDBOX_CURRENCY = "EUR"


@dataclass(frozen=True)
class TestCode:
    """A documented test payment code: the aid behind it, as rules for the engine (None: the
    sandbox wallet is frozen), or the error the code answers."""

    code: str  # as shown in the docs, 10 digits
    answer: str  # what the docs promise, one line
    aid: Callable[[Merchant, datetime], list[tuple[int, dict, dict]]] | None = None
    frozen: bool = False
    error: type[PaymentCodeError] | None = None
    expires: bool = False  # its hold expires at once (authorization.expired)


def _aid(balance: int, rules: dict | None = None, **validity: datetime):
    return lambda merchant, at: [(balance, rules or {}, validity)]


def _other_country(merchant: Merchant, at: datetime):
    country = "BE" if merchant.country == "FR" else "FR"
    return [(SANDBOX_AID, {"zone": {"countries": [country]}}, {})]


def _other_weekdays(merchant: Merchant, at: datetime):
    # Every day but today at the till, on the shop's own clock as the engine reads it.
    today = at.astimezone(geo.local_time_zone(merchant_place(merchant).departement)).weekday()
    days = [day for day in range(7) if day != today]
    return [(SANDBOX_AID, {"schedule": {"weekdays": days}}, {})]


TEST_CODES: dict[str, TestCode] = {
    test.code.replace(" ", ""): test
    for test in (
        TestCode(
            "0000 000 001",
            "approved up to 500.00 EUR; above, declined insufficient_funds, or partially "
            "approved for 500.00 EUR with partial_approval_allowed",
            aid=_aid(SANDBOX_AID),
        ),
        TestCode(
            "0000 000 002",
            "approved up to 10.00 EUR; above, partially approved for 10.00 EUR with "
            "partial_approval_allowed, else declined insufficient_funds",
            aid=_aid(SANDBOX_SMALL_AID),
        ),
        TestCode(
            "0000 000 003",
            "declined aid_expired",
            aid=lambda merchant, at: [(SANDBOX_AID, {}, {"valid_until": at - timedelta(days=1)})],
        ),
        TestCode(
            "0000 000 004",
            "declined aid_not_yet_valid",
            aid=lambda merchant, at: [(SANDBOX_AID, {}, {"valid_from": at + timedelta(days=1)})],
        ),
        TestCode("0000 000 005", "declined outside_allowed_hours", aid=_other_weekdays),
        TestCode(
            "0000 000 006",
            "declined merchant_category_not_allowed",
            aid=lambda merchant, at: [
                (SANDBOX_AID, {"categories": {"block_mccs": [merchant.mcc]}}, {})
            ],
        ),
        TestCode(
            "0000 000 007",
            "declined merchant_not_accepted",
            aid=lambda merchant, at: [(SANDBOX_AID, {"merchants": {"deny": [merchant.pk]}}, {})],
        ),
        TestCode("0000 000 008", "declined outside_zone", aid=_other_country),
        TestCode(
            "0000 000 009",
            "approved up to 1.00 EUR; above, declined limit_exceeded, or partially approved "
            "for 1.00 EUR with partial_approval_allowed",
            aid=_aid(SANDBOX_AID, {"limits": {"per_payment": SANDBOX_PER_PAYMENT}}),
        ),
        TestCode("0000 000 010", "declined no_aid_available", aid=lambda merchant, at: []),
        TestCode("0000 000 011", "declined wallet_frozen", frozen=True),
        TestCode(
            "0000 000 012",
            "approved up to 500.00 EUR, then expired at once (authorization.expired): nothing "
            "left to capture",
            aid=_aid(SANDBOX_AID),
            expires=True,
        ),
        TestCode("0000 000 090", "error 410 payment_code_expired", error=PaymentCodeExpired),
        TestCode("0000 000 091", "error 409 payment_code_used", error=PaymentCodeUsed),
        TestCode(
            "0000 000 092",
            "error 422 payment_code_amount_exceeded",
            error=PaymentCodeAmountExceeded,
        ),
    )
}


def _pocket_states(test: TestCode, merchant: Merchant, at: datetime) -> list[PocketState]:
    assert test.aid is not None
    return [
        PocketState(
            pocket_id=number,
            name="Sandbox aid",
            funder_name="Sandbox",
            rules=PocketRules.from_dict(rules, **validity),
            available=balance,
            currency=SANDBOX_CURRENCY,
            created_at=at,
            usage=Usage(),
        )
        for number, (balance, rules, validity) in enumerate(test.aid(merchant, at), start=1)
    ]


def _frozen() -> Outcome:
    return Outcome(
        status=Decision.Status.DECLINED,
        approved_amount=0,
        reason="wallet_frozen",
        details={},
        pocket_name=None,
        verdicts=(),
        split=(),
    )


def sandbox_authorize(
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
) -> Decision:
    """payment_authorize() for a test key: the same answers, decided by the engine on the aid a
    test payment code names; nothing but the sandbox decision (and its sandbox capture) is
    written."""
    merchant_ensure_active(merchant=merchant)
    test = TEST_CODES.get(payment_code_normalize(payment_code))
    if test is None:
        raise PaymentCodeInvalid()
    if test.error is not None:
        raise test.error()
    at = timezone.now()
    request = authorization_request(
        merchant=merchant,
        amount=amount,
        currency=currency,
        partial_approval_allowed=partial_approval_allowed,
        lines=lines,
        at=at,
    )
    key = scoped_key("sandbox", merchant, idempotency_key)
    params = {
        "amount": amount,
        "currency": currency,
        "code": test.code,
        "partial": partial_approval_allowed,
        "merchant_reference": merchant_reference,
        "metadata": metadata or {},
    }
    if lines:
        params["lines"] = lines

    def create(digest: str) -> Decision:
        outcome = _frozen() if test.frozen else decide(request, _pocket_states(test, merchant, at))
        record = {"amount": amount, "currency": currency, "test_payment_code": test.code}
        if lines:
            record["lines"] = lines
        if test.expires:
            record["expired"] = True  # read by _locked() and merchants.selectors
        decision = Decision.objects.create(
            idempotency_key=key,
            fingerprint=digest,
            channel=Decision.Channel.API,
            livemode=False,
            wallet=None,
            merchant=merchant,
            amount=amount,
            currency=currency,
            status=outcome.status,
            approved_amount=outcome.approved_amount,
            reason=outcome.reason or "",
            reason_pocket=outcome.pocket_name or "",
            details=outcome.details,
            merchant_reference=merchant_reference,
            metadata=metadata or {},
            request=record,
            trace=outcome.to_dict(),
            decided_at=at,
            duration_us=0,
        )
        authorization_announce(decision, DECISION_EVENTS[decision.status])
        if test.expires and decision.approved_amount:
            authorization_announce(decision, EventType.AUTHORIZATION_EXPIRED)
        elif capture and decision.approved_amount:
            _capture(decision, None, f"{key}:capture")
        return decision

    with transaction.atomic():
        return run_idempotent(model=Decision, key=key, params=params, create=create)


def _locked(merchant: Merchant, decision: Decision) -> tuple[Decision, int]:
    """The sandbox decision, locked so that operations on it queue, and what it still holds:
    what was approved less what was reversed, nothing once captured or expired."""
    if decision.merchant_id != merchant.pk or decision.livemode:
        raise InvalidState(
            message="This is not one of your test authorizations.", field="reference"
        )
    locked = Decision.objects.select_for_update().get(pk=decision.pk)
    if locked.request.get("expired") or Capture.objects.filter(decision=locked).exists():
        return locked, 0
    reversed_ = Reversal.objects.filter(decision=locked).aggregate(total=Sum("amount"))["total"]
    return locked, locked.approved_amount - (reversed_ or 0)


def _capture(decision: Decision, amount: int | None, key: str) -> Capture:
    def take() -> tuple[Decision, int]:
        locked, held = _locked(decision.merchant, decision)  # then a second capture waits
        if Capture.objects.filter(decision=locked).exists():
            raise AuthorizationAlreadyCaptured()
        return locked, amount_taken(held, amount)

    return operation_run(Capture, decision=decision, key=key, amount=amount, take=take)


def sandbox_capture(
    *,
    merchant: Merchant,
    decision: Decision,
    idempotency_key: str | None,
    amount: int | None = None,
) -> Capture:
    if amount is not None:
        validate_amount(amount)
    _locked(merchant, decision)  # checks ownership before any write
    return _capture(decision, amount, scoped_key("sandbox", merchant, idempotency_key))


def sandbox_reverse(
    *,
    merchant: Merchant,
    decision: Decision,
    idempotency_key: str | None,
    amount: int | None = None,
) -> Reversal:
    if amount is not None:
        validate_amount(amount)

    def take() -> tuple[Decision, int]:
        locked, held = _locked(merchant, decision)
        return locked, amount_taken(held, amount)

    key = scoped_key("sandbox", merchant, idempotency_key)
    return operation_run(Reversal, decision=decision, key=key, amount=amount, take=take)


def sandbox_refund(
    *,
    merchant: Merchant,
    decision: Decision,
    amount: int,
    idempotency_key: str | None,
    reason: str = "",
) -> Refund:
    validate_amount(amount)

    def take() -> tuple[Decision, int]:
        locked, _ = _locked(merchant, decision)
        captured = Capture.objects.filter(decision=locked).aggregate(total=Sum("amount"))["total"]
        refunded = Refund.objects.filter(decision=locked).aggregate(total=Sum("amount"))["total"]
        refundable_check((captured or 0) - (refunded or 0), amount)
        return locked, amount

    key = scoped_key("sandbox", merchant, idempotency_key)
    return operation_run(
        Refund, decision=decision, key=key, amount=amount, take=take, reason=reason
    )


def sandbox_description() -> str:
    """The test payment codes and what each answers, as the API description shows them."""
    rows = "\n".join(f"| `{test.code}` | {test.answer} |" for test in TEST_CODES.values())
    return (
        "**Sandbox.** With a test key (`sk_test_...`) send one of these test payment codes; "
        "any other code answers 404 `payment_code_invalid`. Test codes can be used again and "
        "again; every object answers `livemode: false` and no money moves.\n\n"
        f"| test payment_code | answer |\n| --- | --- |\n{rows}\n\n"
        "Any approving code with a currency other than EUR: declined currency_not_supported."
    )
