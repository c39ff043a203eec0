"""The reads of a capture and of a refund on PostgreSQL, one statement each under the wallet's
lock (issue 19): what the ORM's path (merchants.payments: _locked_holds and hold_post per hold;
capture_refund and refund_post per capture) reads in 8 to 12 statements. Their writes then go
in one statement (core/one_statement.py) with the operation's stored answer.

Each read runs after the wallet's lock is held (wallet.hot_path.WALLET_LOCK, sent in the read's
message: one round trip), so it sees every operation on the payment committed before: all of them
take that lock first, and each statement of a message takes its snapshot as it starts. Prepared
once per connection (core/prepared.py). tests/merchant_api/test_operation_hot_path.py runs both
paths and compares what they write."""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from core.prepared import lock_and_read
from funders.models import Allocation
from ledger.models import Account, Transfer
from merchants.models import Capture, Refund
from wallet.hot_path import WALLET_LOCK

# The decision's holds still in force, in split order (a hold past its expiry counts as gone:
# it can no longer be captured), with their accounts and when each was placed (the periods of
# the pocket's spending its capture moves, ledger/spending.py); whether the decision was
# captured; the capture already recorded under the request's key, if any.
_HOLDS = f"""
    SELECT h.id, h.amount, h.currency, h.debit_account_id, da.currency, da.guarded,
        h.credit_account_id, ca.currency, ca.guarded,
        EXISTS (SELECT 1 FROM {Capture._meta.db_table} c WHERE c.decision_id = %(decision)s),
        EXISTS (SELECT 1 FROM {Capture._meta.db_table} c WHERE c.idempotency_key = %(key)s),
        h.created_at
    FROM wallet_decisionhold dh
    JOIN wallet_transfer h ON h.id = dh.hold_id
    JOIN wallet_account da ON da.id = h.debit_account_id
    JOIN wallet_account ca ON ca.id = h.credit_account_id
    WHERE dh.decision_id = %(decision)s
      AND NOT EXISTS (SELECT 1 FROM wallet_transfer r WHERE r.pending_transfer_id = h.id)
      AND (h.expires_at IS NULL OR h.expires_at > %(at)s)
    ORDER BY dh.id
"""

# The decision's captures, newest first, with what was refunded of each, the account each
# credited (paid to) and debited (the pocket's), the pocket's aid's status and its program's
# float account (where a refund goes once the aid has ended), its hold (whose periods of the
# pocket's spending a refund gives back to); the refund already recorded under
# the request's key, if any. The aid's row is locked, as capture_refund() takes it: an aid ending
# at this moment either ends first (its status is read after it) or after (its sweep takes the
# refund). Waiting for it re-reads that row only, the one column read from it; what else was
# read is the payment's, which no one changes without the wallet's lock.
_CAPTURES = f"""
    SELECT t.id, t.amount, t.currency,
        CAST(COALESCE((SELECT SUM(f.amount) FROM wallet_transfer f WHERE f.refund_of_id = t.id), 0)
             AS BIGINT),
        pt.id, pt.currency, pt.guarded, pa.id, pa.currency, pa.guarded, a.status,
        fa.id, fa.currency, fa.guarded,
        EXISTS (SELECT 1 FROM {Refund._meta.db_table} r WHERE r.idempotency_key = %(key)s),
        h.id, h.created_at
    FROM wallet_transfer t
    JOIN wallet_transfer h ON h.id = t.pending_transfer_id
    JOIN wallet_decisionhold dh ON dh.hold_id = t.pending_transfer_id
    JOIN wallet_entry paid ON paid.transfer_id = t.id AND paid.amount > 0
    JOIN wallet_account pt ON pt.id = paid.account_id
    JOIN wallet_entry taken ON taken.transfer_id = t.id AND taken.amount < 0
    JOIN wallet_pocket p ON p.account_id = taken.account_id
    JOIN wallet_account pa ON pa.id = p.account_id
    JOIN funders_allocation a ON a.id = p.allocation_id
    JOIN funders_program pr ON pr.id = a.program_id
    JOIN wallet_account fa ON fa.id = pr.float_account_id
    WHERE t.kind = %(capture)s AND dh.decision_id = %(decision)s
    ORDER BY t.id DESC
    FOR UPDATE OF a
"""


@dataclass(frozen=True)
class HoldsRead:
    holds: list[Transfer]  # in force, in split order, their two accounts attached
    captured: bool
    replay: bool  # a capture is recorded under the key


@dataclass(frozen=True)
class CaptureState:
    transfer: Transfer
    refunded: int
    paid_to: Account
    to: Account  # the pocket's account while its aid is active, else the program's float


@dataclass(frozen=True)
class CapturesRead:
    captures: list[CaptureState]  # newest first
    replay: bool  # a refund is recorded under the key


def _account(pk: int, currency: str, guarded: bool) -> Account:
    return Account(pk=pk, currency=currency, guarded=guarded)


def holds_read(*, wallet_id: int, decision_id: int, key: str, at: datetime) -> HoldsRead:
    """Lock the wallet `wallet_id`, then read the decision's holds in force under the lock."""
    params = {
        "decision": decision_id,
        "key": key,
        "at": connection.ops.adapt_datetimefield_value(at),
    }
    _locked, rows = lock_and_read((WALLET_LOCK, [wallet_id]), (_HOLDS, params))
    holds = [
        Transfer(
            pk=row[0],
            kind=Transfer.Kind.HOLD,
            is_pending=True,
            amount=row[1],
            currency=row[2],
            debit_account=_account(*row[3:6]),
            credit_account=_account(*row[6:9]),
            created_at=row[11],
        )
        for row in rows
    ]
    return HoldsRead(
        holds=holds,
        captured=bool(rows) and rows[0][9],
        replay=bool(rows) and rows[0][10],
    )


def captures_read(*, wallet_id: int, decision_id: int, key: str) -> CapturesRead:
    """Lock the wallet `wallet_id`, then read the decision's captures under the lock."""
    params = {"decision": decision_id, "key": key, "capture": Transfer.Kind.CAPTURE.value}
    _locked, rows = lock_and_read((WALLET_LOCK, [wallet_id]), (_CAPTURES, params))
    captures = [
        CaptureState(
            transfer=Transfer(
                pk=row[0],
                kind=Transfer.Kind.CAPTURE,
                amount=row[1],
                currency=row[2],
                pending_transfer=Transfer(
                    pk=row[15],
                    kind=Transfer.Kind.HOLD,
                    is_pending=True,
                    debit_account_id=row[7],
                    created_at=row[16],
                ),
            ),
            refunded=row[3],
            paid_to=_account(*row[4:7]),
            to=_account(*row[7:10])
            if row[10] == Allocation.Status.ACTIVE
            else _account(*row[11:14]),
        )
        for row in rows
    ]
    return CapturesRead(captures=captures, replay=bool(rows) and rows[0][14])
