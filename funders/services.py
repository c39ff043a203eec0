"""Writes of the funder side: programs, funding, allocations and their end."""

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import F
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django.utils.translation import gettext as _
from simple_history.utils import bulk_update_with_history

from core import after_commit
from core.errors import CurrencyMismatch, DomainError, InsufficientFunds, InvalidState
from core.money import format_money, validate_amount
from core.time import PARIS
from core.validators import email_canonical
from funders import rollups
from funders.models import (
    Allocation,
    Enrolment,
    Funder,
    Funding,
    Membership,
    Program,
    RecurringAllocation,
    RollupWatermark,
)
from funders.signals import allocation_granted
from ledger.idempotency import run_idempotent
from ledger.models import Account, Transfer
from ledger.services import (
    account_get_or_create,
    refund_post,
    transfer_post,
    transfers_post_many,
)
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
    default_valid_from: date | None = None,
    default_valid_until: date | None = None,
    default_validity_days: int | None = None,
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
            default_valid_from=default_valid_from,
            default_valid_until=default_valid_until,
            default_validity_days=default_validity_days,
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
        if Beneficiary.objects.filter(pk=beneficiary.pk, erased_at__isnull=False).exists():
            raise InvalidState(message=_("This person's data was erased."), field="beneficiary")
        wallet, _created = Wallet.objects.get_or_create(beneficiary=beneficiary)
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
        # Written with the grant, sent after commit: a grant rolled back tells nobody.
        allocation_granted.send(sender=Allocation, allocation=allocation)
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


def _allocations_sweep(allocations: Sequence[Allocation]) -> None:
    """allocation_sweep for many ended allocations at once, in the caller's transaction: each
    pocket's account locked (in primary-key order), what is free in it returned to its program
    by one EXPIRE or REVOKE transfer, all of them posted together."""
    accounts = {
        account.pk: account
        for account in Account.objects.select_for_update()
        .filter(pk__in=[allocation.pocket.account_id for allocation in allocations])
        .order_by("pk")
    }
    moves: dict[tuple[str, str], list] = defaultdict(list)
    for allocation in allocations:
        if allocation.currency != allocation.program.currency:
            raise CurrencyMismatch(field="currency")
        account = accounts[allocation.pocket.account_id]
        if account.available <= 0:
            continue
        kind = (
            Transfer.Kind.REVOKE
            if allocation.status == Allocation.Status.REVOKED
            else Transfer.Kind.EXPIRE
        )
        legs = [
            (account, -account.available),
            (allocation.program.float_account, account.available),
        ]
        moves[(kind, account.currency)].append((legs, {"allocation": allocation.pk}))
    for (kind, currency), kind_moves in moves.items():
        transfers_post_many(kind=kind, currency=currency, moves=kind_moves)


def _allocations_expire_batch(*, batch_size: int) -> int:
    """End up to `batch_size` allocations whose validity is over and sweep their pockets, in one
    transaction. Allocations another transaction holds (being revoked, say) are left to the
    next batch."""
    now = timezone.now()
    with transaction.atomic():
        due = list(
            Allocation.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(status=Allocation.Status.ACTIVE, valid_until__lte=now)
            .select_related("program__float_account", "pocket")
            .order_by("valid_until", "pk")[:batch_size]
        )
        for allocation in due:
            allocation.status = Allocation.Status.EXPIRED
            allocation.ended_at = now
            allocation.end_reason = ""
        bulk_update_with_history(due, Allocation, ["status", "ended_at", "end_reason"])
        _allocations_sweep(due)
    return len(due)


def _expire_batch_sql() -> str:
    """One statement ending up to %(limit)s due allocations and returning their pockets' free
    money to their programs: the allocations locked (those another transaction holds are left
    to the next batch) and marked expired with their history rows, their pockets' accounts
    locked in primary-key order, each pocket's balance brought down to what it holds, each
    float credited with the sum, one EXPIRE transfer per pocket with its two entries. Set-based:
    nothing per row goes through Python, which at a million allocations was the whole cost (the
    ORM building history rows, and one CASE branch per balance)."""
    history = Allocation.history.model
    own = [f.column for f in Allocation._meta.concrete_fields]
    extra = {"history_date", "history_change_reason", "history_type", "history_user_id"}
    columns = [f.column for f in history._meta.concrete_fields if f.column in own]
    assert {f.column for f in history._meta.concrete_fields} == {*columns, "history_id", *extra}
    listed = ", ".join(columns)
    from_ended = ", ".join(f"ended.{column}" for column in columns)
    return f"""
        WITH picked AS (
            -- The allocations alone, through their expiry index: joined here, the planner
            -- would read every pocket to sort a million due allocations, for each batch.
            SELECT a.id, a.program_id
            FROM funders_allocation a
            WHERE a.status = 'active' AND a.valid_until <= %(now)s
            -- Not by id too: allocations of a campaign end at the same instant, and a second
            -- key would sort all of them for each batch.
            ORDER BY a.valid_until
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        ), due AS (
            SELECT picked.id, p.account_id, pr.float_account_id
            FROM picked
            JOIN wallet_pocket p ON p.allocation_id = picked.id
            JOIN funders_program pr ON pr.id = picked.program_id
        ), ended AS (
            UPDATE funders_allocation a SET status = 'expired', ended_at = %(now)s,
                end_reason = ''
            FROM due WHERE a.id = due.id
            RETURNING a.*
        ), history AS (
            INSERT INTO {history._meta.db_table} ({listed}, history_date,
                history_change_reason, history_type, history_user_id)
            SELECT {from_ended}, %(now)s, NULL, '~', NULL FROM ended
        ), locked AS (
            SELECT ac.id, ac.currency, ac.balance - ac.pending AS free, due.id AS allocation,
                due.float_account_id
            FROM wallet_account ac JOIN due ON due.account_id = ac.id
            ORDER BY ac.id
            FOR UPDATE OF ac
        ), moving AS (
            SELECT * FROM locked WHERE free > 0
        ), pockets AS (
            UPDATE wallet_account ac SET balance = ac.pending
            FROM moving WHERE ac.id = moving.id
        ), floats AS (
            UPDATE wallet_account ac SET balance = ac.balance + f.total
            FROM (SELECT float_account_id, sum(free) AS total FROM moving GROUP BY 1) f
            WHERE ac.id = f.float_account_id
        ), transfers AS (
            INSERT INTO wallet_transfer (kind, currency, amount, fingerprint, is_pending,
                metadata, created_at)
            SELECT 'expire', currency, free, '', false,
                jsonb_build_object('allocation', allocation), %(now)s
            FROM moving
            RETURNING id, (metadata ->> 'allocation')::bigint AS allocation
        ), entries AS (
            INSERT INTO wallet_entry (transfer_id, account_id, amount)
            SELECT t.id, side.account, side.amount
            FROM transfers t JOIN moving m USING (allocation),
                LATERAL (VALUES (m.id, -m.free), (m.float_account_id, m.free))
                    AS side (account, amount)
        )
        SELECT count(*) FROM ended"""


def _allocations_expire_batch_sql(*, batch_size: int) -> int:
    """_allocations_expire_batch in one PostgreSQL statement (see _expire_batch_sql)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_expire_batch_sql(), {"now": timezone.now(), "limit": batch_size})
        return cursor.fetchone()[0]


# Pockets a sweep ends between two folds of what it returned into the dashboards' rollup.
SWEEP_FOLD_EVERY = 50_000


def _swept_fold() -> None:
    """Folds what a sweep returned, with what was paid meanwhile, into the dashboards' rollup
    (funders/rollups.py): left after the watermark, a sweep's transfers (one per pocket) were
    read again by every dashboard until the beat's next fold, 3-18 s for 100,000 pockets. Not
    before the rollup's first fold (the beat's, of the whole history: half an hour at a
    million): until then every dashboard reads the ledger itself anyway."""
    if RollupWatermark.objects.filter(pk=1).exists():
        rollups.rollup_fold(through=rollups.transfers_settled())


def allocations_expire_due(*, batch_size: int = 1000, fold_every: int = SWEEP_FOLD_EVERY) -> int:
    """End every allocation whose validity is over and return its remainder to the program,
    `batch_size` at a time (each batch one transaction, a few statements whatever its size);
    then sweep ended allocations whose pending payments have since been released. Folds what
    it returned into the dashboards' rollup as it goes, every `fold_every` pockets and at its
    end, so that no dashboard reads more of it than that. Returns the number of allocations
    ended."""
    count = 0
    unfolded = 0
    # On PostgreSQL one statement a batch; elsewhere (SQLite, in development) the ORM's.
    expire_batch = (
        _allocations_expire_batch_sql
        if connection.vendor == "postgresql"
        else _allocations_expire_batch
    )
    while True:
        ended = expire_batch(batch_size=batch_size)
        count += ended
        unfolded += ended
        if unfolded >= fold_every:
            _swept_fold()
            unfolded = 0
        if ended < batch_size:
            break
    while True:
        with transaction.atomic():
            leftovers = list(
                Allocation.objects.exclude(status=Allocation.Status.ACTIVE)
                .filter(pocket__account__balance__gt=F("pocket__account__pending"))
                .select_related("program__float_account", "pocket")
                .order_by("pk")[:batch_size]
            )
            _allocations_sweep(leftovers)
        unfolded += len(leftovers)
        if len(leftovers) < batch_size:
            break
    if unfolded:
        _swept_fold()
    return count


def allocation_grant_many(
    *,
    program: Program,
    beneficiaries: list[Beneficiary],
    amount: int,
    valid_from: datetime,
    valid_until: datetime | None,
    key_prefix: str,
    by: AbstractBaseUser | None = None,
) -> list[Allocation]:
    """Grant the same aid to several beneficiaries, all or none: a program that cannot fund
    every grant funds none, and says how much is missing. Each grant's key is the prefix and the
    beneficiary, so the same request made again grants nothing twice."""
    validate_amount(amount)
    with transaction.atomic():
        # Locked so that the check below still holds when the grants debit the float.
        float_account = Account.objects.select_for_update().get(pk=program.float_account_id)
        already = set(
            Allocation.objects.filter(
                idempotency_key__in=[f"{key_prefix}:{b.pk}" for b in beneficiaries]
            ).values_list("beneficiary_id", flat=True)
        )
        needed = amount * sum(1 for b in beneficiaries if b.pk not in already)
        if needed > float_account.available:
            raise InsufficientFunds(
                message=_("The program has %(available)s available; these grants need %(needed)s.")
                % {
                    "available": format_money(float_account.available, program.currency),
                    "needed": format_money(needed, program.currency),
                },
                field="amount",
                available=float_account.available,
                needed=needed,
            )
        with after_commit.together():  # the grants' messages in batches, not a task each
            return [
                allocation_create(
                    program=program,
                    beneficiary=beneficiary,
                    amount=amount,
                    valid_from=valid_from,
                    valid_until=valid_until,
                    idempotency_key=f"{key_prefix}:{beneficiary.pk}",
                    by=by,
                )
                for beneficiary in beneficiaries
            ]


def recurring_run_date(schedule: RecurringAllocation, run: int) -> date:
    """The day of the run numbered `run` (0 is the first)."""
    months = schedule.starts_on.year * 12 + schedule.starts_on.month - 1 + run
    return date(months // 12, months % 12 + 1, schedule.day_of_month)


def recurring_allocation_run_due(*, schedule: RecurringAllocation, today: date) -> int:
    """Make every run of a schedule whose day has come, each all or none. A run the program
    cannot fund is left for the next pass and its reason kept on the schedule for the funder.
    Returns the number of runs made."""
    made = 0
    while True:
        with transaction.atomic():
            locked = RecurringAllocation.objects.select_for_update().get(pk=schedule.pk)
            run = locked.runs_done
            if not locked.is_active or run >= locked.runs:
                return made
            day = recurring_run_date(locked, run)
            if day > today:
                return made
            valid_from = datetime.combine(day, time(0, 0), tzinfo=PARIS)
            valid_until = (
                valid_from + timedelta(days=locked.validity_days) if locked.validity_days else None
            )
            try:
                with transaction.atomic():
                    allocation_grant_many(
                        program=locked.program,
                        beneficiaries=list(locked.beneficiaries.all()),
                        amount=locked.amount,
                        valid_from=valid_from,
                        valid_until=valid_until,
                        key_prefix=f"recurring:{locked.pk}:{run}",
                        by=locked.created_by,
                    )
            except DomainError as error:
                locked.last_error = str(error.message)[:300]
                locked.save(update_fields=["last_error"])
                return made
            locked.runs_done = run + 1
            locked.last_error = ""
            locked.save(update_fields=["runs_done", "last_error"])
            made += 1


def recurring_allocations_run_due() -> int:
    """Make the runs of recurring allocations whose day has come. Each run is made once,
    whatever the number of times this runs (its grants' keys name the run)."""
    today = timezone.localdate()
    made = 0
    due = RecurringAllocation.objects.filter(is_active=True).select_related("program")
    for schedule in due:
        if schedule.runs_done < schedule.runs:
            made += recurring_allocation_run_due(schedule=schedule, today=today)
    return made


def staff_invite(
    *, funder: Funder, email: str, first_name: str, last_name: str, role: str, site_url: str
) -> Membership:
    """Give a person a role in a funder's staff. A new person gets an account with no password
    and an email with a link to choose one; nobody ever sends a password around. A person is
    found by their address's canonical form, with "=": iexact would let a look-alike address
    (gmail.com with a dotless i, U+0131) name an existing account on PostgreSQL."""
    try:
        email = email_canonical(email)
    except ValidationError as error:
        raise DomainError(message=error.messages[0], field="email") from error
    with transaction.atomic():
        user = get_user_model().objects.filter(email=email).first()
        if user is None:
            user = get_user_model().objects.create_user(
                username=email, email=email, first_name=first_name, last_name=last_name
            )
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        membership, created = Membership.objects.get_or_create(
            user=user, funder=funder, defaults={"role": role}
        )
        if not created:
            raise InvalidState(message=_("This person is already on the staff."), field="email")
        if not user.has_usable_password():
            transaction.on_commit(lambda: _send_invitation(user, funder, site_url))
        return membership


def _send_invitation(user, funder: Funder, site_url: str) -> None:
    path = reverse(
        "password_reset_confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    context = {"funder": funder, "user": user, "link": site_url.rstrip("/") + path}
    send_mail(
        subject=_("Your access to the aid back office of %(funder)s") % {"funder": funder},
        message=render_to_string("funders/email/staff_invitation.txt", context),
        from_email=None,
        recipient_list=[user.email],
    )


def _keep_an_administrator(membership: Membership) -> None:
    others = Membership.objects.filter(
        funder_id=membership.funder_id, role=Membership.Role.ADMINISTRATOR
    ).exclude(pk=membership.pk)
    if membership.role == Membership.Role.ADMINISTRATOR and not others.exists():
        raise InvalidState(
            message=_("A funder keeps at least one administrator: name another one first."),
            field="role",
        )


def membership_change_role(*, membership: Membership, role: str) -> Membership:
    with transaction.atomic():
        locked = Membership.objects.select_for_update().get(pk=membership.pk)
        if role != Membership.Role.ADMINISTRATOR:
            _keep_an_administrator(locked)
        locked.role = role
        locked.full_clean()
        locked.save(update_fields=["role"])
        return locked


def membership_remove(*, membership: Membership) -> None:
    """Take a person off a funder's staff; with no funder left, they lose the back office."""
    with transaction.atomic():
        locked = Membership.objects.select_for_update().get(pk=membership.pk)
        _keep_an_administrator(locked)
        user = locked.user
        locked.delete()
        if not user.is_superuser and not user.funder_memberships.exists():
            user.is_staff = False
            user.save(update_fields=["is_staff"])


def capture_refund(*, capture: Transfer, amount: int, idempotency_key: str | None) -> Transfer:
    """Refund (part of) a captured payment. The money goes back to the pocket it came from while
    that aid is active, and to the program's float once it has expired or been revoked, so an
    ended aid is never refilled."""
    if not isinstance(capture, Transfer) or capture.kind != Transfer.Kind.CAPTURE:
        raise InvalidState(message="Only a capture can be refunded.", field="capture")
    paid_from = capture.entries.select_related("account").get(amount__lt=0).account
    pocket = Pocket.objects.get(account=paid_from)
    with transaction.atomic():
        # The allocation's row, as revocation and expiry take it: an aid ending at this moment
        # either ends first (the refund goes to the program) or after (its sweep takes it).
        allocation = (
            Allocation.objects.select_for_update(of=("self",))
            .select_related("program__float_account")
            .get(pk=pocket.allocation_id)
        )
        to = (
            paid_from
            if allocation.status == Allocation.Status.ACTIVE
            else allocation.program.float_account
        )
        return refund_post(capture=capture, amount=amount, to=to, idempotency_key=idempotency_key)
