"""Writes of the funder side: programs, funding, allocations and their end."""

import uuid
from datetime import date, datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from funders.models import Allocation, Enrolment, Funder, Funding, Program
from wallet.errors import CurrencyMismatch, InvalidState
from wallet.ledger.idempotency import run_idempotent
from wallet.ledger.models import Account, Transfer
from wallet.ledger.services import account_get_or_create, transfer_post, validate_amount
from wallet.models import Beneficiary, Pocket, Wallet


def _new_account(*, prefix: str, name: str, kind: str, currency: str) -> Account:
    return Account.objects.create(
        code=f"{prefix}:{uuid.uuid4().hex[:16]}",
        name=name[:200],
        kind=kind,
        currency=currency,
        guarded=True,
    )


def external_funding_account(currency: str) -> Account:
    """Where funders' money enters the ledger: the mirror of their bank transfers and top-ups.
    It goes negative by design (its balance is minus what funders ever paid in)."""
    return account_get_or_create(
        code=f"external-funding:{currency}",
        name=f"External funding ({currency})",
        kind=Account.Kind.EXTERNAL_FUNDING,
        currency=currency,
        guarded=False,
    )


def program_create(
    *,
    funder: Funder,
    name: str,
    currency: str = "EUR",
    purpose: str = "",
    rules: dict | None = None,
) -> Program:
    with transaction.atomic():
        float_account = _new_account(
            prefix="program-float",
            name=f"{funder.name} — {name}",
            kind=Account.Kind.PROGRAM_FLOAT,
            currency=currency,
        )
        return Program.objects.create(
            funder=funder,
            name=name,
            purpose=purpose,
            currency=currency,
            float_account=float_account,
            rules=rules or {},
        )


def program_fund(
    *,
    program: Program,
    amount: int,
    idempotency_key: str,
    reference: str = "",
    method: str = Funding.Method.BANK_TRANSFER,
    received_on: date | None = None,
    by: AbstractBaseUser | None = None,
) -> Funding:
    """Record money the funder paid in (a bank transfer, a Stripe top-up) on the program's float."""
    validate_amount(amount)
    with transaction.atomic():
        transfer = transfer_post(
            kind=Transfer.Kind.FUND,
            currency=program.currency,
            legs=[
                (external_funding_account(program.currency), -amount),
                (program.float_account, amount),
            ],
            idempotency_key=idempotency_key,
            metadata={"program": program.pk, "reference": reference, "method": method},
        )
        # A replayed key finds the record of the first call.
        funding, _ = Funding.objects.get_or_create(
            transfer=transfer,
            defaults={
                "program": program,
                "amount": amount,
                "method": method,
                "reference": reference,
                "received_on": received_on or timezone.localdate(),
                "created_by": by,
            },
        )
        return funding


def beneficiary_enrol(
    *, funder: Funder, beneficiary: Beneficiary, reference: str = ""
) -> Enrolment:
    """Make a beneficiary known to a funder, whose staff may then see and help them."""
    enrolment, created = Enrolment.objects.get_or_create(
        funder=funder, beneficiary=beneficiary, defaults={"reference": reference}
    )
    if not created and reference and enrolment.reference != reference:
        enrolment.reference = reference
        enrolment.full_clean()
        enrolment.save(update_fields=["reference"])
    return enrolment


def allocation_create(
    *,
    program: Program,
    beneficiary: Beneficiary,
    amount: int,
    valid_from: datetime,
    valid_until: datetime | None,
    idempotency_key: str,
    rules: dict | None = None,
    by: AbstractBaseUser | None = None,
) -> Allocation:
    """Grant `amount` of a program to a beneficiary: debits the program's float (which refuses
    more than is funded and unallocated) and credits a new pocket in the beneficiary's wallet."""
    validate_amount(amount)
    if timezone.is_naive(valid_from) or (valid_until and timezone.is_naive(valid_until)):
        raise InvalidState(message="Validity dates must carry a time zone.", field="valid_from")
    if valid_until is not None and valid_until <= valid_from:
        raise InvalidState(
            message="The end of validity must come after its start.", field="valid_until"
        )

    def create(digest: str) -> Allocation:
        # Checked here, after the key's lookup: a retry of a grant made before the program
        # closed is a replay, not a refusal.
        if not program.is_active:
            raise InvalidState(message="This program is closed.", field="program")
        wallet, _ = Wallet.objects.get_or_create(beneficiary=beneficiary)
        beneficiary_enrol(funder=program.funder, beneficiary=beneficiary)
        allocation = Allocation.objects.create(
            program=program,
            beneficiary=beneficiary,
            amount=amount,
            currency=program.currency,
            valid_from=valid_from,
            valid_until=valid_until,
            rules=rules or {},
            idempotency_key=idempotency_key,
            fingerprint=digest,
            created_by=by,
        )
        account = _new_account(
            prefix="pocket",
            name=f"{program.name} — {beneficiary}",
            kind=Account.Kind.POCKET,
            currency=program.currency,
        )
        Pocket.objects.create(wallet=wallet, allocation=allocation, account=account)
        transfer_post(
            kind=Transfer.Kind.ALLOCATE,
            currency=program.currency,
            legs=[(program.float_account, -amount), (account, amount)],
            idempotency_key=f"allocate:{idempotency_key}",
            metadata={"allocation": allocation.pk},
        )
        return allocation

    params = {
        "program": program.pk,
        "beneficiary": beneficiary.pk,
        "amount": amount,
        "valid_from": valid_from.isoformat(),
        "valid_until": valid_until.isoformat() if valid_until else None,
        "rules": rules or {},
    }
    return run_idempotent(model=Allocation, key=idempotency_key, params=params, create=create)


def allocation_sweep(*, allocation: Allocation, kind: str) -> Transfer | None:
    """Return what is free in an ended allocation's pocket to its program. Money still held by a
    pending payment stays until the hold resolves; the next sweep takes what it releases. Safe to
    run any number of times: it locks the pocket's account and moves only what it finds."""
    if allocation.currency != allocation.program.currency:
        raise CurrencyMismatch(field="currency")
    with transaction.atomic():
        account = Account.objects.select_for_update().get(pk=allocation.pocket.account_id)
        if account.available <= 0:
            return None
        return transfer_post(
            kind=kind,
            currency=account.currency,
            legs=[
                (account, -account.available),
                (allocation.program.float_account, account.available),
            ],
            idempotency_key=None,
            metadata={"allocation": allocation.pk},
        )


def _allocation_end(*, allocation: Allocation, status: str, kind: str, reason: str) -> Allocation:
    with transaction.atomic():
        locked = Allocation.objects.select_for_update().get(pk=allocation.pk)
        if locked.status == Allocation.Status.ACTIVE:
            locked.status = status
            locked.ended_at = timezone.now()
            locked.end_reason = reason
            locked.save(update_fields=["status", "ended_at", "end_reason"])
        elif locked.status != status:
            raise InvalidState(
                message=f"This allocation is already {locked.status}.", field="allocation"
            )
        allocation_sweep(allocation=locked, kind=kind)
        return locked


def allocation_revoke(*, allocation: Allocation, reason: str = "") -> Allocation:
    """End an allocation early; what is left of it returns to the program."""
    return _allocation_end(
        allocation=allocation,
        status=Allocation.Status.REVOKED,
        kind=Transfer.Kind.REVOKE,
        reason=reason,
    )


def allocation_expire(*, allocation: Allocation) -> Allocation:
    """End an allocation whose validity is over; what is left of it returns to the program."""
    if allocation.valid_until is None or allocation.valid_until > timezone.now():
        raise InvalidState(message="This allocation is still valid.", field="allocation")
    return _allocation_end(
        allocation=allocation,
        status=Allocation.Status.EXPIRED,
        kind=Transfer.Kind.EXPIRE,
        reason="",
    )
