"""Writes to the ledger. The only code that creates transfers and entries, moves running
balances or keeps each account's spending per period (ledger/spending.py). Every function
validates its input before touching anything, so bad input raises a DomainError and changes
nothing.

Concurrency: guarded accounts are moved by single guarded UPDATE statements
(`... WHERE balance - pending >= x`), which PostgreSQL serialises per row at READ COMMITTED
without a prior SELECT ... FOR UPDATE; several accounts are always updated in primary-key order
so two transfers never wait on each other's rows in opposite orders."""

import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from django.db import connection, transaction
from django.db.models import BigIntegerField, Case, F, Sum, Value, When
from django.utils import timezone

from core.errors import (
    AmountTooLarge,
    CurrencyMismatch,
    ExceedsHoldAmount,
    ExceedsRefundable,
    HoldAlreadyResolved,
    InsufficientFunds,
    InvalidAmount,
    InvalidState,
    UnknownAccount,
)
from core.money import MAX_AMOUNT, validate_amount
from core.one_statement import OneStatement, new_row
from core.types import JSONDict
from ledger.idempotency import run_idempotent
from ledger.models import Account, Entry, Spending, Transfer, VerifyRun
from ledger.spending import (
    EXPECTED_POSTGRESQL,
    SPENDING,
    Change,
    expected_rows,
    spending_rows,
    spending_upsert,
)
from ledger.verify import Problem, verify

Leg = tuple[Account, int]


def _saved(account: Account) -> Account:
    if not isinstance(account, Account) or account.pk is None:
        raise UnknownAccount(field="account")
    return account


def _spending_moved(changes: Sequence[Change]) -> None:
    """Spending moved by `changes`, in this transaction (ledger/spending.py)."""
    rows = spending_rows(changes)
    if rows:
        with connection.cursor() as cursor:
            cursor.execute(*spending_upsert(rows, connection))


def _spending_moved_in(writes: OneStatement, changes: Sequence[Change]) -> None:
    """Spending moved by `changes`, in `writes`: one upsert for them all, a statement's CTEs
    may move a row only once."""
    rows = spending_rows(changes)
    if rows:
        writes.sql(*spending_upsert(rows, connection))


def spending_rebuild() -> None:
    """Spending made again from the scan of every hold (ledger/spending.py): for the migration
    that made the table and for bench/pg_cost.py, which writes its transfers in bulk. Run where
    no payment writes at the same time."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {SPENDING}")
            if connection.vendor == "postgresql":
                cursor.execute(
                    f"INSERT INTO {SPENDING} (account_id, grain, start, net) {EXPECTED_POSTGRESQL}"
                )
                return
        Spending.objects.bulk_create(
            Spending(account_id=account_id, grain=grain, start=start, net=net)
            for (account_id, grain, start), net in sorted(expected_rows(connection).items())
        )


def account_get_or_create(
    *, code: str, name: str, kind: str, currency: str, guarded: bool
) -> Account:
    account, _ = Account.objects.get_or_create(
        code=code,
        defaults={"name": name, "kind": kind, "currency": currency, "guarded": guarded},
    )
    return account


def _debit_guarded(account: Account, amount: int) -> None:
    moved = Account.objects.filter(pk=account.pk, balance__gte=F("pending") + amount).update(
        balance=F("balance") - amount
    )
    if not moved:
        raise InsufficientFunds(account=account.code)


def _apply_legs(legs: Sequence[Leg]) -> None:
    for account, amount in sorted(legs, key=lambda leg: leg[0].pk):
        if not account.guarded:
            continue
        if amount < 0:
            _debit_guarded(account, -amount)
        else:
            Account.objects.filter(pk=account.pk).update(balance=F("balance") + amount)


def _validate_legs(legs: Sequence[Leg], currency: str) -> int:
    if len(legs) < 2:
        raise InvalidState(message="A transfer needs at least two entries.", field="legs")
    for account, amount in legs:
        _saved(account)
        if not isinstance(amount, int) or isinstance(amount, bool) or amount == 0:
            raise InvalidAmount(field="amount")
        if abs(amount) > MAX_AMOUNT:
            raise AmountTooLarge(field="amount")
        if account.currency != currency:
            raise CurrencyMismatch(field="currency")
    if sum(amount for _, amount in legs) != 0:
        raise InvalidState(message="A transfer's entries must sum to zero.", field="legs")
    if len({account.pk for account, _ in legs}) != len(legs):
        raise InvalidState(message="An account appears twice in one transfer.", field="legs")
    return sum(amount for _, amount in legs if amount > 0)


def transfer_post(
    *,
    kind: str,
    currency: str,
    legs: Sequence[Leg],
    idempotency_key: str | None,
    metadata: JSONDict | None = None,
) -> Transfer:
    """Post a transfer with its entries and move guarded balances, all in one transaction.
    Raises InsufficientFunds (and moves nothing) if a guarded account would go negative."""
    amount = _validate_legs(legs, currency)

    def create(digest: str) -> Transfer:
        return _write_transfer(
            kind=kind,
            currency=currency,
            amount=amount,
            legs=legs,
            idempotency_key=idempotency_key,
            digest=digest,
            metadata=metadata,
        )

    params = {
        "kind": kind,
        "currency": currency,
        "legs": sorted((account.pk, leg_amount) for account, leg_amount in legs),
    }
    return _idempotent(idempotency_key, params, create)


def transfers_post_many(
    *, kind: str, currency: str, moves: Sequence[tuple[Sequence[Leg], JSONDict]]
) -> list[Transfer]:
    """Post many transfers at once, without idempotency keys, for a batch job idempotent by the
    state it locks (the end of many allocations): one statement for the transfers, one for
    their entries, one moving every guarded account by the net of its legs. The caller runs it
    in its transaction and has locked, in primary-key order, the accounts it debits. All or
    nothing: InsufficientFunds, and the caller's transaction rolls back, if a guarded account
    would go below what it holds."""
    amounts = [_validate_legs(legs, currency) for legs, _metadata in moves]
    net: dict[int, int] = defaultdict(int)
    for legs, _metadata in moves:
        for account, amount in legs:
            if account.guarded:
                net[account.pk] += amount
    moved = {pk: amount for pk, amount in net.items() if amount}
    with transaction.atomic(savepoint=False):
        if moved:
            delta = Case(
                *(When(pk=pk, then=Value(amount)) for pk, amount in moved.items()),
                output_field=BigIntegerField(),
            )
            updated = (
                Account.objects.filter(pk__in=moved, balance__gte=F("pending") - delta)
                .update(balance=F("balance") + delta)
            )  # fmt: skip
            if updated != len(moved):
                raise InsufficientFunds(field="amount")
        transfers = Transfer.objects.bulk_create(
            Transfer(kind=kind, currency=currency, amount=amount, metadata=metadata)
            for amount, (_legs, metadata) in zip(amounts, moves, strict=True)
        )
        Entry.objects.bulk_create(
            Entry(transfer=transfer, account=account, amount=leg_amount)
            for transfer, (legs, _metadata) in zip(transfers, moves, strict=True)
            for account, leg_amount in legs
        )
    return transfers


def _idempotent(
    key: str | None, params: Mapping[str, object], create: Callable[[str], Transfer]
) -> Transfer:
    # Without a key, the caller is idempotent by other means: internal sweeps by the state they
    # lock, authorize() by its decision's key. No savepoint either: a failure here aborts the
    # caller's whole transaction, which is what every such caller wants.
    if key is None:
        with transaction.atomic(savepoint=False):
            return create("")
    return run_idempotent(model=Transfer, key=key, params=params, create=create)


def _write_transfer(
    *,
    kind: str,
    currency: str,
    amount: int,
    legs: Sequence[Leg],
    idempotency_key: str | None,
    digest: str,
    metadata: JSONDict | None,
    refund_of: Transfer | None = None,
) -> Transfer:
    _apply_legs(legs)
    transfer = Transfer.objects.create(
        kind=kind,
        currency=currency,
        amount=amount,
        idempotency_key=idempotency_key,
        fingerprint=digest,
        metadata=metadata or {},
        refund_of=refund_of,
    )
    Entry.objects.bulk_create(
        Entry(transfer=transfer, account=account, amount=leg_amount) for account, leg_amount in legs
    )
    return transfer


def refund_post(
    *, capture: Transfer, amount: int, to: Account, idempotency_key: str | None
) -> Transfer:
    """Return up to what a capture paid, minus earlier refunds, from the account it credited to
    `to` (the pocket it came from, or the program when the pocket has ended)."""
    validate_amount(amount)
    _saved(to)
    if not isinstance(capture, Transfer) or capture.kind != Transfer.Kind.CAPTURE:
        raise InvalidState(message="Only a capture can be refunded.", field="capture")
    if to.currency != capture.currency:
        raise CurrencyMismatch(field="currency")

    def create(digest: str) -> Transfer:
        # Lock the capture so that two concurrent refunds cannot both pass the check below.
        # With its hold, whose periods the refund gives back to (not locked: it is resolved).
        locked = (
            Transfer.objects.select_related("pending_transfer")
            .select_for_update(of=("self",))
            .get(pk=capture.pk)
        )
        refunded = locked.refunds.aggregate(total=Sum("amount"))["total"] or 0
        if refunded + amount > locked.amount:
            raise ExceedsRefundable(field="amount", refundable=locked.amount - refunded)
        # With its account: one round trip, not two (a refund's processor time, issue 19).
        paid_to = locked.entries.select_related("account").get(amount__gt=0).account
        refund = _write_transfer(
            kind=Transfer.Kind.REFUND,
            currency=locked.currency,
            amount=amount,
            legs=[(paid_to, -amount), (to, amount)],
            idempotency_key=idempotency_key,
            digest=digest,
            metadata={},
            refund_of=locked,
        )
        # After the accounts' rows (_write_transfer), as every writer moves them: a payment on
        # the pocket locks its account's row, then these.
        _spending_moved(_refunded([(locked, amount)]))
        return refund

    # `to` is not a parameter of the client's request but derived from the aid's state, which
    # may change between a call and its retry (the aid ends): it stays out of the fingerprint.
    params = {"capture": capture.pk, "amount": amount}
    return _idempotent(idempotency_key, params, create)


def _refunded(refunds: Sequence[tuple[Transfer, int]]) -> list[Change]:
    """What refunding each (capture, amount) does to its hold's net. A card capture the network
    made with no hold of ours (posted in full, stripe_issuing) counts in no period: nothing
    was authorized, so nothing is given back either."""
    changes = []
    for capture, amount in refunds:
        hold = capture.pending_transfer
        if hold is not None and hold.debit_account_id is not None:
            changes.append((hold.debit_account_id, hold.created_at, -amount))
    return changes


def refunds_post_in(
    writes: OneStatement, refunds: Sequence[tuple[Transfer, int, Account, Account]]
) -> list[Transfer]:
    """refund_post() of each (capture, amount, paid_to, to), for a caller that writes in one
    statement (core/one_statement.py), is idempotent by its own record's key and has read, under
    the lock every refund of these captures takes (the wallet's, for a payment's), that each
    amount is at most what its capture has left to refund. `paid_to`, the account the capture
    credited, must be unguarded (a merchant's payable): a guarded one needs refund_post()'s
    guarded debit, which can refuse. Each capture's hold (`pending_transfer`), with its debit
    account and created_at, is read with it, or costs a query here. The transfers' ids are set
    once the statement ran."""
    moves: dict[int, tuple[int, int]] = defaultdict(lambda: (0, 0))
    for capture, amount, paid_to, to in refunds:
        validate_amount(amount)
        if capture.kind != Transfer.Kind.CAPTURE:
            raise InvalidState(message="Only a capture can be refunded.", field="capture")
        if paid_to.guarded:
            raise InvalidState(message="A guarded account is debited by refund_post().")
        if to.currency != capture.currency or paid_to.currency != capture.currency:
            raise CurrencyMismatch(field="currency")
        if to.guarded:
            pending, balance = moves[to.pk]
            moves[to.pk] = (pending, balance + amount)
    _moved_in(writes, moves)
    _spending_moved_in(writes, _refunded([(capture, amount) for capture, amount, _, _ in refunds]))
    transfers = []
    for capture, amount, paid_to, to in refunds:
        transfer = Transfer(
            kind=Transfer.Kind.REFUND,
            currency=capture.currency,
            amount=amount,
            idempotency_key=None,
            fingerprint="",
            metadata={},
            refund_of=capture,
        )
        writes.insert(transfer)
        writes.insert(Entry(transfer=transfer, account=paid_to, amount=-amount))
        writes.insert(Entry(transfer=transfer, account=to, amount=amount))
        transfers.append(transfer)
    return transfers


def hold_place(
    *,
    debit: Account,
    credit: Account,
    amount: int,
    idempotency_key: str | None,
    expires_at: datetime | None = None,
    metadata: JSONDict | None = None,
) -> Transfer:
    """Reserve `amount` on a guarded account. Raises InsufficientFunds if it is not available.
    Every ledger write takes `idempotency_key`; None is for callers that are idempotent
    themselves (authorize() and the merchant's captures, reversals and refunds, by their own
    records' keys)."""
    _validate_hold(debit, credit, amount)

    def create(digest: str) -> Transfer:
        return _write_hold(
            debit=debit,
            credit=credit,
            amount=amount,
            idempotency_key=idempotency_key,
            digest=digest,
            expires_at=expires_at,
            metadata=metadata,
        )

    params = {"debit": debit.pk, "credit": credit.pk, "amount": amount}
    return _idempotent(idempotency_key, params, create)


def _validate_hold(debit: Account, credit: Account, amount: int) -> None:
    validate_amount(amount)
    _saved(debit)
    _saved(credit)
    if debit.currency != credit.currency:
        raise CurrencyMismatch(field="currency")
    if not debit.guarded:
        raise InvalidState(message="Holds are placed on guarded accounts only.", field="debit")


def hold_place_in(
    writes: OneStatement,
    *,
    debit: Account,
    credit: Account,
    amount: int,
    expires_at: datetime | None = None,
) -> Transfer:
    """hold_place() for a caller that sends its writes as one statement (core/one_statement.py)
    and is idempotent by its own record's key: the same hold, the same row. The guard is the
    account's CHECK constraint (balance >= pending): a hold the balance cannot cover aborts the
    statement, and the caller's transaction, with an IntegrityError; the caller decides again
    from fresh balances. The Transfer's id is set once the statement has run."""
    _validate_hold(debit, credit, amount)
    writes.sql(
        f"UPDATE {Account._meta.db_table} SET pending = pending + %s WHERE id = %s",
        [amount, debit.pk],
    )
    # Built as a read row is (new_row): Model.__init__'s keyword path was the largest part of
    # placing the hold in Python (issue 19, part 10).
    hold = new_row(
        Transfer,
        kind=Transfer.Kind.HOLD,
        currency=debit.currency,
        amount=amount,
        idempotency_key=None,
        fingerprint="",
        is_pending=True,
        debit_account=debit,
        credit_account=credit,
        expires_at=expires_at,
        metadata={},
    )
    writes.insert(hold)  # sets its created_at, which its periods are
    _spending_moved_in(writes, [(debit.pk, hold.created_at, amount)])
    return hold


def _write_hold(
    *,
    debit: Account,
    credit: Account,
    amount: int,
    idempotency_key: str | None,
    digest: str,
    expires_at: datetime | None,
    metadata: JSONDict | None,
) -> Transfer:
    reserved = Account.objects.filter(pk=debit.pk, balance__gte=F("pending") + amount).update(
        pending=F("pending") + amount
    )
    if not reserved:
        raise InsufficientFunds(account=debit.code)
    hold = Transfer.objects.create(
        kind=Transfer.Kind.HOLD,
        currency=debit.currency,
        amount=amount,
        idempotency_key=idempotency_key,
        fingerprint=digest,
        is_pending=True,
        debit_account=debit,
        credit_account=credit,
        expires_at=expires_at,
        metadata=metadata or {},
    )
    _spending_moved([(debit.pk, hold.created_at, amount)])
    return hold


def _lock_pending_hold(hold: Transfer, *, at: datetime | None) -> Transfer:
    """Lock the hold row so that two resolutions queue, then check it is still pending."""
    if not isinstance(hold, Transfer) or not hold.is_pending:
        raise InvalidState(message="This transfer is not a hold.", field="hold")
    locked = Transfer.objects.select_for_update().get(pk=hold.pk)
    # A hold's accounts never change: those the caller read with it (a capture reads them with
    # its holds) serve the locked row too, instead of two more round trips to read them again.
    for field in (Transfer.debit_account.field, Transfer.credit_account.field):
        if field.is_cached(hold) and getattr(hold, field.attname) == getattr(locked, field.attname):
            field.set_cached_value(locked, field.get_cached_value(hold))
    resolved = Transfer.objects.filter(pending_transfer=locked).first()
    if resolved is not None:
        locked.resolution = resolved
        state = locked.hold_state
        assert state is not None  # a hold (is_pending, checked above) always has a state
        raise HoldAlreadyResolved(state)
    if at is not None and locked.expires_at is not None and locked.expires_at <= at:
        raise HoldAlreadyResolved("expired")
    return locked


def _hold_accounts(hold: Transfer) -> tuple[Account, Account]:
    debit, credit = hold.debit_account, hold.credit_account
    # A hold names both accounts (the transfer_hold_names_its_accounts constraint).
    assert debit is not None and credit is not None
    return debit, credit


def _resolve(
    hold: Transfer, *, kind: str, posted: int, idempotency_key: str | None, at: datetime | None
) -> Transfer:
    def create(digest: str) -> Transfer:
        locked = _lock_pending_hold(hold, at=at)
        if posted > locked.amount:
            raise ExceedsHoldAmount(field="amount")
        return _write_resolution(
            locked, kind=kind, posted=posted, idempotency_key=idempotency_key, digest=digest
        )

    params = {"hold": hold.pk, "kind": kind, "posted": posted}
    return _idempotent(idempotency_key, params, create)


def _write_resolution(
    locked: Transfer, *, kind: str, posted: int, idempotency_key: str | None, digest: str
) -> Transfer:
    debit, credit = _hold_accounts(locked)
    # The whole hold leaves `pending`; only the posted part leaves `balance`. The rest is
    # released, which is how a partial capture frees what was not captured.
    Account.objects.filter(pk=debit.pk).update(
        pending=F("pending") - locked.amount, balance=F("balance") - posted
    )
    if posted and credit.guarded:
        Account.objects.filter(pk=credit.pk).update(balance=F("balance") + posted)
    # The hold now nets what was posted (0 for a void or an expiry), no longer its amount.
    _spending_moved([(debit.pk, locked.created_at, posted - locked.amount)])
    transfer = Transfer.objects.create(
        kind=kind,
        currency=locked.currency,
        amount=posted or locked.amount,
        idempotency_key=idempotency_key,
        fingerprint=digest,
        pending_transfer=locked,
    )
    if posted:
        Entry.objects.bulk_create(
            [
                Entry(transfer=transfer, account=debit, amount=-posted),
                Entry(transfer=transfer, account=credit, amount=posted),
            ]
        )
    return transfer


def hold_post(
    *, hold: Transfer, amount: int | None = None, idempotency_key: str | None
) -> Transfer:
    """Capture a hold, whole (amount None) or in part; what is not captured is released."""
    posted = hold.amount if amount is None else validate_amount(amount)
    return _resolve(
        hold,
        kind=Transfer.Kind.CAPTURE,
        posted=posted,
        idempotency_key=idempotency_key,
        at=timezone.now(),
    )


def _moved_in(writes: OneStatement, moves: Mapping[int, tuple[int, int]]) -> None:
    """Each account's net (pending, balance) change as one UPDATE of `writes`, in primary-key
    order: a statement's data-modifying CTEs may update a row only once, and several holds or
    refunds of one operation may move the same account."""
    table = Account._meta.db_table
    for pk, (pending, balance) in sorted(moves.items()):
        if pending or balance:
            writes.sql(
                f"UPDATE {table} SET pending = pending + %s, balance = balance + %s WHERE id = %s",
                [pending, balance, pk],
            )


def holds_resolve_in(
    writes: OneStatement, resolutions: Sequence[tuple[Transfer, int]]
) -> list[Transfer]:
    """hold_post() (posted > 0) or hold_void() (posted 0) of each (hold, posted), for a caller
    that writes in one statement (core/one_statement.py), is idempotent by its own record's key
    and holds the lock every resolver of these holds takes (the wallet's, for a payment's): it
    has read them unresolved, unexpired and with their accounts under that lock. A hold resolved
    meanwhile all the same makes the statement fail on the one resolution a hold may have (an
    IntegrityError). Each hold's created_at must be read with it (its periods in Spending).
    Returns the capture transfers, whose ids are set once the statement ran."""
    moves: dict[int, tuple[int, int]] = defaultdict(lambda: (0, 0))
    resolved, captures = [], []
    changes: list[Change] = []
    for hold, posted in resolutions:
        if not 0 <= posted <= hold.amount:
            raise ExceedsHoldAmount(field="amount")
        debit, credit = _hold_accounts(hold)
        pending, balance = moves[debit.pk]
        moves[debit.pk] = (pending - hold.amount, balance - posted)
        changes.append((debit.pk, hold.created_at, posted - hold.amount))
        if posted and credit.guarded:
            pending, balance = moves[credit.pk]
            moves[credit.pk] = (pending, balance + posted)
        transfer = Transfer(
            kind=Transfer.Kind.CAPTURE if posted else Transfer.Kind.VOID,
            currency=hold.currency,
            amount=posted or hold.amount,
            idempotency_key=None,
            fingerprint="",
            pending_transfer=hold,
            metadata={},
        )
        entries = [Entry(transfer=transfer, account=debit, amount=-posted)] if posted else []
        entries += [Entry(transfer=transfer, account=credit, amount=posted)] if posted else []
        resolved.append((transfer, entries))
        if posted:
            captures.append(transfer)
    _moved_in(writes, moves)
    _spending_moved_in(writes, changes)
    for transfer, entries in resolved:
        writes.insert(transfer)
        for entry in entries:
            writes.insert(entry)
    return captures


def hold_void(*, hold: Transfer, idempotency_key: str | None) -> Transfer:
    """Release a hold in full (a reversal): nothing is paid."""
    return _resolve(
        hold, kind=Transfer.Kind.VOID, posted=0, idempotency_key=idempotency_key, at=None
    )


def hold_release(
    *, hold: Transfer, amount: int, idempotency_key: str | None = None
) -> Transfer | None:
    """Give `amount` of a hold back to the account it reserves (a partial reversal); the rest
    stays held. The account's pending goes down by `amount` exactly; its balance does not move.

    A hold resolves once and whole (one resolving transfer per hold), so the hold is voided and
    what stays is held by a new hold on the same accounts, with the same expiry and metadata:
    that hold is returned, or None when `amount` is the whole hold. ExceedsHoldAmount past it."""
    validate_amount(amount)

    def create(digest: str) -> Transfer:
        locked = _lock_pending_hold(hold, at=None)
        if amount > locked.amount:
            raise ExceedsHoldAmount(field="amount")
        if amount == locked.amount:
            return _write_resolution(
                locked,
                kind=Transfer.Kind.VOID,
                posted=0,
                idempotency_key=idempotency_key,
                digest=digest,
            )
        # The key goes on the transfer returned, the hold that keeps the rest.
        _write_resolution(
            locked, kind=Transfer.Kind.VOID, posted=0, idempotency_key=None, digest=""
        )
        debit, credit = _hold_accounts(locked)
        # Cannot be refused: the void just freed more than this takes back.
        return _write_hold(
            debit=debit,
            credit=credit,
            amount=locked.amount - amount,
            idempotency_key=idempotency_key,
            digest=digest,
            expires_at=locked.expires_at,
            metadata=locked.metadata,
        )

    params = {"hold": hold.pk, "release": amount}
    transfer = _idempotent(idempotency_key, params, create)
    # A replay finds the transfer that carries the key: the void of the whole hold, or the rest.
    return transfer if transfer.is_pending else None


def hold_expire(*, hold: Transfer) -> Transfer:
    """Release a hold whose time is up. Keyed by the hold, so running it twice is harmless."""
    return _resolve(
        hold,
        kind=Transfer.Kind.HOLD_EXPIRE,
        posted=0,
        idempotency_key=f"hold-expire:{hold.pk}",
        at=None,
    )


def verify_run_record() -> list[Problem]:
    """`verify`, then a VerifyRun saying when it ran and how many problems it found (the
    metrics' ledger verify result and age). Recorded after the checks, on its own: a long
    verify holds no write open."""
    started = time.monotonic()
    problems = verify()
    VerifyRun.objects.create(
        finished_at=timezone.now(),
        duration_ms=int((time.monotonic() - started) * 1000),
        problems=len(problems),
    )
    return problems
