"""The reads of a payment by one-time code on PostgreSQL, in two statements (issue 19): the
wallet's lock found through the code's slot, then, under that lock, the code, the merchant's
recent wrong guesses, the spendable pockets with their rules, balances and what each spent in
every period. The portable path (payment_code_redeem, pocket_states, pockets_usage) reads the
same through the ORM in seven statements; tests/merchant_api/test_hot_path.py runs both and
compares what they write.

Two statements, not one: a statement that waited for the wallet's lock still reads with the
snapshot it took before waiting (READ COMMITTED), so balances and spending read in the same
statement as the lock could be those before the payment it waited for. The second statement
starts after the lock is held and sees everything committed before it."""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from core.prepared import prepared_cursor
from engine.compiled import compiled_rules
from engine.decide import PocketState
from engine.periods import PERIODS, Usage, period_start
from ledger.models import Account
from wallet.models import PaymentCode, Wallet
from wallet.models.wallets import SPENDABLE_ALLOCATION_STATUS

_WALLET_FIELDS = [field.attname for field in Wallet._meta.concrete_fields]

_LOCK = f"""
    SELECT {", ".join(f"w.{field}" for field in _WALLET_FIELDS)}, c.id
    FROM wallet_paymentcode c JOIN wallet_wallet w ON w.id = c.wallet_id
    WHERE c.slot = %s AND c.status = %s
    ORDER BY c.created_at DESC LIMIT 1
    FOR UPDATE OF w
"""

# The code row is locked too, as payment_code_redeem does, though every writer of codes takes
# the wallet's lock first. The usage is pockets_usage()'s (wallet/usage.py), per pocket: a
# hold counts for its amount while pending, for what its capture kept once captured (net of
# refunds), for nothing once voided or expired; "validity" counts from the grant's start.
_READ = """
    SELECT c.wallet_id, c.digest, c.status, c.max_amount, c.currency, c.expires_at,
        (SELECT f.at FROM wallet_paymentcodefailure f
         WHERE f.wallet_id = c.wallet_id AND f.merchant_id = %(merchant)s AND f.at > %(since)s
         ORDER BY f.at DESC OFFSET %(tries)s LIMIT 1),
        p.id, p.created_at, p.account_id, a.valid_from, a.valid_until, pr.rules::text,
        a.rules::text, pr.name, fu.name, acc.balance - acc.pending, acc.currency, acc.guarded,
        u.day, u.week, u.month, u.year, u.validity
    FROM (SELECT * FROM wallet_paymentcode WHERE id = %(code)s FOR UPDATE) c
    LEFT JOIN (
        wallet_pocket p
        JOIN funders_allocation a ON a.id = p.allocation_id AND a.status = %(spendable)s
        JOIN funders_program pr ON pr.id = a.program_id
        JOIN funders_funder fu ON fu.id = pr.funder_id
        JOIN wallet_account acc ON acc.id = p.account_id
    ) ON p.wallet_id = c.wallet_id
    LEFT JOIN LATERAL (
        SELECT SUM(net) FILTER (WHERE created_at >= %(day)s) AS day,
               SUM(net) FILTER (WHERE created_at >= %(week)s) AS week,
               SUM(net) FILTER (WHERE created_at >= %(month)s) AS month,
               SUM(net) FILTER (WHERE created_at >= %(year)s) AS year,
               SUM(net) FILTER (WHERE a.valid_from IS NULL OR created_at >= a.valid_from)
                   AS validity
        FROM (
            SELECT h.created_at,
                   CASE WHEN r.id IS NULL THEN h.amount
                        WHEN r.kind = 'capture' THEN r.amount - COALESCE((
                            SELECT SUM(f.amount) FROM wallet_transfer f WHERE f.refund_of_id = r.id
                        ), 0)
                        ELSE 0 END AS net
            FROM wallet_transfer h LEFT JOIN wallet_transfer r ON r.pending_transfer_id = h.id
            WHERE h.is_pending AND h.debit_account_id = p.account_id
                  AND (a.valid_from IS NULL OR h.created_at >= LEAST(a.valid_from, %(earliest)s))
        ) holds
    ) u ON p.id IS NOT NULL
    ORDER BY p.id
"""


@dataclass(frozen=True)
class CodeRead:
    """What one read under the wallet's lock found: the code as it is now (None if it is no
    longer the wallet's usable code), whether the merchant is locked out of the wallet's codes,
    and the states of the wallet's spendable pockets."""

    code: PaymentCode | None
    merchant_locked: bool
    states: list[PocketState]
    accounts: dict[int, Account]  # pocket id -> its ledger account (id, currency, guarded)


def wallet_lock_by_slot(slot: str) -> tuple[Wallet, int] | None:
    """Lock the wallet of the usable code in `slot` and return it with the code's id; None when
    the slot has no usable code."""
    with prepared_cursor() as cursor:
        cursor.execute(_LOCK, [slot, PaymentCode.Status.ACTIVE])
        row = cursor.fetchone()
    if row is None:
        return None
    return Wallet.from_db(connection.alias, _WALLET_FIELDS, row[:-1]), row[-1]


def read_under_lock(
    *,
    wallet_id: int,
    code_id: int,
    merchant_id: int | None,
    at: datetime,
    since: datetime,
    tries: int,
) -> CodeRead:
    """The code `code_id`, the merchant's wrong guesses on the wallet's codes after `since` (is
    there a `tries`-th?), and the pockets with what they spent in each period around `at`."""
    starts = {period: period_start(period, at, valid_from=None) for period in PERIODS[:-1]}
    adapt = connection.ops.adapt_datetimefield_value
    params = {period: adapt(start) for period, start in starts.items()} | {
        "earliest": adapt(min(start for start in starts.values() if start is not None)),
        "merchant": merchant_id,
        "since": adapt(since),
        "tries": tries - 1,
        "code": code_id,
        "spendable": SPENDABLE_ALLOCATION_STATUS,
    }
    with prepared_cursor() as cursor:
        cursor.execute(_READ, params)
        rows = cursor.fetchall()
    first = rows[0] if rows else None
    if first is None or first[0] != wallet_id or first[2] != PaymentCode.Status.ACTIVE:
        return CodeRead(code=None, merchant_locked=False, states=[], accounts={})
    code = PaymentCode(
        pk=code_id,
        wallet_id=first[0],
        digest=first[1],
        status=first[2],
        max_amount=first[3],
        currency=first[4],
        expires_at=first[5],
    )
    states, accounts = [], {}
    for row in rows:
        if row[7] is None:  # the wallet has no spendable pocket
            break
        (pocket_id, created_at, account_id, valid_from, valid_until, program_rules) = row[7:13]
        allocation_rules, program, funder, available, currency, guarded = row[13:19]
        accounts[pocket_id] = Account(pk=account_id, currency=currency, guarded=guarded)
        states.append(
            PocketState(
                pocket_id=pocket_id,
                name=program,
                funder_name=funder,
                rules=compiled_rules(program_rules, allocation_rules, valid_from, valid_until),
                available=available,
                currency=currency,
                created_at=created_at,
                # PostgreSQL's SUM of bigints is a numeric: back to int, never a Decimal.
                usage=Usage(
                    spent={
                        period: int(spent or 0)
                        for period, spent in zip(PERIODS, row[19:], strict=True)
                    }
                ),
            )
        )
    locked = first[6] is not None
    return CodeRead(code=code, merchant_locked=locked, states=states, accounts=accounts)
