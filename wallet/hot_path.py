"""The reads of a payment on PostgreSQL, in two statements sent in one message (issue 19).

By one-time code: the wallet's lock found through the code's slot, then, under that lock, the
code, the merchant's recent wrong guesses, the spendable pockets with their rules, balances and
what each spent in every period. By card: the wallet's lock, then the card as it is now, any
decision already taken under the payment's key, and the same pockets. The portable path
(payment_code_redeem, pocket_states, pockets_usage) reads the same through the ORM in seven
statements; tests/merchant_api/test_hot_path.py and tests/stripe_issuing/test_hot_path.py run
both and compare what they write.

Two statements, not one: a statement that waited for the wallet's lock still reads with the
snapshot it took before waiting (READ COMMITTED), so balances and spending read in the same
statement as the lock could be those before the payment it waited for. The second statement
starts after the lock is held and sees everything committed before it, whether it comes in a
message of its own or in the lock's (PostgreSQL takes each statement's snapshot as it starts
it): both go in one message, one round trip (core/prepared.py's execute_in_turn), the second
finding the code and the card as the first did, not by what the first returned. Both are
prepared once per connection (core/prepared.py): PostgreSQL took longer to plan the read than
to run it."""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from core.prepared import lock_and_read
from engine.compiled import compiled_rules
from engine.decide import PocketState
from engine.periods import PERIODS, Usage, period_start
from ledger.models import Account
from ledger.spending import HOLD_NETS
from wallet.models import PaymentCode, Wallet
from wallet.models.wallets import SPENDABLE_ALLOCATION_STATUS

_WALLET_FIELDS = [field.attname for field in Wallet._meta.concrete_fields]

_ACCOUNT_FIELDS = ["id", "currency", "guarded"]

_CODE_FIELDS = ["id", "wallet_id", "digest", "status", "max_amount", "currency", "expires_at"]

_LOCK = f"""
    SELECT {", ".join(f"w.{field}" for field in _WALLET_FIELDS)}, c.id
    FROM wallet_paymentcode c JOIN wallet_wallet w ON w.id = c.wallet_id
    WHERE c.slot = %s AND c.status = %s
    ORDER BY c.created_at DESC LIMIT 1
    FOR UPDATE OF w
"""

# The holds placed on the pocket before its aid's start, normally none (the validity cap counts
# the pocket's spending from that start), through the index on (debit_account_id, created_at).
_BEFORE_VALIDITY = HOLD_NETS.format(
    where="h.debit_account_id = p.account_id AND h.created_at < a.valid_from"
)

# The usage is pockets_usage()'s (wallet/usage.py), per pocket: what the pocket's holds net in
# each period, kept by the ledger per Paris day, month and year (ledger.models.Spending): the
# day and week sum the days from the week's Monday on, the month its month's row, the year its
# year's, the validity every year's less what was placed before the aid's start. Rows after
# `at` count too, as holds placed after it do (a payment decided while this one waited for the
# lock). A dozen rows per pocket, however many holds it has.
# The spendable pockets of the wallet `{wallet}` names, with their rules, balances and usage,
# joined to the row before them (one row per pocket, or one of NULLs): _POCKET_COLUMNS.
_POCKETS = f"""
    LEFT JOIN (
        wallet_pocket p
        JOIN funders_allocation a ON a.id = p.allocation_id AND a.status = %(spendable)s
        JOIN funders_program pr ON pr.id = a.program_id
        JOIN funders_funder fu ON fu.id = pr.funder_id
        JOIN wallet_account acc ON acc.id = p.account_id
    ) ON p.wallet_id = {{wallet}}
    LEFT JOIN LATERAL (
        SELECT SUM(s.net) FILTER (WHERE s.grain = 'day' AND s.start >= %(day)s) AS day,
               SUM(s.net) FILTER (WHERE s.grain = 'day') AS week,
               SUM(s.net) FILTER (WHERE s.grain = 'month') AS month,
               SUM(s.net) FILTER (WHERE s.grain = 'year' AND s.start >= %(year)s) AS year,
               SUM(s.net) FILTER (WHERE s.grain = 'year') AS total
        FROM (
            SELECT grain, start, net FROM ledger_spending
            WHERE account_id = p.account_id AND grain = 'day' AND start >= %(week)s
            UNION ALL
            SELECT grain, start, net FROM ledger_spending
            WHERE account_id = p.account_id AND grain = 'month' AND start >= %(month)s
            UNION ALL
            SELECT grain, start, net FROM ledger_spending
            WHERE account_id = p.account_id AND grain = 'year'
        ) s
    ) u ON p.id IS NOT NULL
    LEFT JOIN LATERAL (
        SELECT SUM(net) AS net FROM ({_BEFORE_VALIDITY}) early
    ) before_validity ON a.valid_from IS NOT NULL
"""
_POCKET_COLUMNS = """p.id, p.created_at, p.account_id, a.valid_from, a.valid_until, pr.rules::text,
    a.rules::text, pr.name, fu.name, acc.balance - acc.pending, acc.currency, acc.guarded,
    u.day, u.week, u.month, u.year, u.total - COALESCE(before_validity.net, 0)"""

# The code row is locked too, as payment_code_redeem does. Not every writer of codes takes the
# wallet's lock first: payment_code_create() marks expired the past-expiry code of the slot it
# takes, whatever its wallet, under its own wallet's lock only; this row lock orders that with
# the code's redemption. The usage is pockets_usage()'s (wallet/usage.py), per pocket: a hold
# counts for its amount while pending, for what its capture kept once captured (net of
# refunds), for nothing once voided or expired; "validity" counts from the grant's start.
_READ = (
    f"""
    SELECT c.id, c.wallet_id, c.digest, c.status, c.max_amount, c.currency, c.expires_at,
        c.locked_at, {_POCKET_COLUMNS}
    FROM (
        SELECT *,
            -- Here, once per payment: in the outer SELECT it ran once per pocket's row.
            (SELECT f.at FROM wallet_paymentcodefailure f
             WHERE f.wallet_id = code.wallet_id AND f.merchant_id = %(merchant)s
                AND f.at > %(since)s
             ORDER BY f.at DESC OFFSET %(tries)s LIMIT 1) AS locked_at
        -- The lock's code: the slot's usable one (one at most: a unique index).
        FROM wallet_paymentcode code WHERE slot = %(slot)s AND status = %(active)s FOR UPDATE
    ) c
    """
    + _POCKETS.format(wallet="c.wallet_id")
    + "ORDER BY p.id"
)

# The wallet's lock by its id: a card's payment, a capture and a refund (merchants/hot_path.py)
# send it in the message of their read under it.
WALLET_LOCK = f"""
    SELECT {", ".join(_WALLET_FIELDS)} FROM wallet_wallet WHERE id = %s FOR UPDATE
"""

# The card's state as it is under the lock (a freeze commits under the wallet's lock too), and
# the decision already taken under the payment's key (Stripe sends a request again when our
# answer was late): the fast path then leaves it to authorize(), which answers the replay.
_READ_CARD = (
    f"""
    SELECT cd.status, (SELECT d.id FROM wallet_decision d WHERE d.idempotency_key = %(key)s),
        {_POCKET_COLUMNS}
    FROM wallet_card cd
    """
    + _POCKETS.format(wallet="cd.wallet_id")
    + "WHERE cd.id = %(card)s ORDER BY p.id"
)


@dataclass(frozen=True, slots=True)
class PocketAccount:
    """A pocket's ledger account as read (id, currency, guarded): made an Account only for the
    pockets a payment holds on, one in most payments; a model instance for each of the three
    pockets read cost about as much as the rest of reading them (issue 19)."""

    pk: int
    currency: str
    guarded: bool

    def account(self) -> Account:
        # As Django builds a row it read: the fields not read are deferred (loaded if ever
        # asked for), not set to their defaults as Model.__init__'s keyword path set them,
        # which showed a balance of 0 (and cost 44 µs against 40 by timeit, loaded; part 10).
        return Account.from_db(
            connection.alias, _ACCOUNT_FIELDS, (self.pk, self.currency, self.guarded)
        )


@dataclass(frozen=True)
class CodeRead:
    """What one read under the wallet's lock found: the code as it is now (None if it is no
    longer the wallet's usable code), whether the merchant is locked out of the wallet's codes,
    and the states of the wallet's spendable pockets."""

    code: PaymentCode | None
    merchant_locked: bool
    states: list[PocketState]
    accounts: dict[int, PocketAccount]


def lock_and_read_by_slot(
    *, slot: str, merchant_id: int | None, at: datetime, since: datetime, tries: int
) -> tuple[Wallet, CodeRead] | None:
    """Lock the wallet of the usable code in `slot`, then read under the lock the code as it is
    now, the merchant's wrong guesses on the wallet's codes after `since` (is there a
    `tries`-th?), and the pockets with what they spent in each period around `at`. None when
    the slot has no usable code."""
    active = PaymentCode.Status.ACTIVE
    params = _period_params(at) | {
        "merchant": merchant_id,
        "since": connection.ops.adapt_datetimefield_value(since),
        "tries": tries - 1,
        "slot": slot,
        "active": active,
    }
    locked, rows = lock_and_read((_LOCK, [slot, active]), (_READ, params))
    if locked is None:
        return None
    wallet, code_id = Wallet.from_db(connection.alias, _WALLET_FIELDS, locked[:-1]), locked[-1]
    first = rows[0] if rows else None
    # Another code in the slot by now (the locked one expired by another wallet's new code, which
    # took the slot), or none: this wallet's code is no longer usable.
    if first is None or first[0] != code_id or first[1] != wallet.pk or first[3] != active:
        return wallet, CodeRead(code=None, merchant_locked=False, states=[], accounts={})
    # As Django builds a row it read (the keyword path cost three times as much, issue 19); its
    # other fields are deferred: read from the database if ever asked for.
    code = PaymentCode.from_db(connection.alias, _CODE_FIELDS, first[:7])
    states, accounts = _pockets(rows, 8)
    locked_out = first[7] is not None
    return wallet, CodeRead(code=code, merchant_locked=locked_out, states=states, accounts=accounts)


@dataclass(frozen=True)
class CardRead:
    """What the read under the wallet's lock found for a card payment: the card's status now,
    whether a decision was already taken under the payment's key, the spendable pockets."""

    card_status: str
    decided: bool
    states: list[PocketState]
    accounts: dict[int, PocketAccount]


def lock_and_read_card(
    *, wallet_id: int, card_id: int, key: str, at: datetime
) -> tuple[Wallet, CardRead]:
    """Lock the wallet `wallet_id`, then read under the lock the card `card_id` as it is now,
    whether a decision exists under `key`, and its wallet's pockets with what they spent in each
    period around `at`: one round trip."""
    locked, rows = lock_and_read(
        (WALLET_LOCK, [wallet_id]),
        (_READ_CARD, _period_params(at) | {"card": card_id, "key": key}),
    )
    if locked is None:
        raise Wallet.DoesNotExist(f"no wallet {wallet_id}")
    states, accounts = _pockets(rows, 2)
    return Wallet.from_db(connection.alias, _WALLET_FIELDS, locked), CardRead(
        card_status=rows[0][0], decided=rows[0][1] is not None, states=states, accounts=accounts
    )


def _period_params(at: datetime) -> dict:
    """The parameters of _POCKETS: the first day of each period around `at`."""
    starts = {period: period_start(period, at, valid_from=None) for period in PERIODS[:-1]}
    # The periods' first days in Paris, as Spending's rows start.
    return {period: start.date() for period, start in starts.items() if start is not None} | {
        "spendable": SPENDABLE_ALLOCATION_STATUS
    }


def _pockets(rows: list[tuple], offset: int) -> tuple[list[PocketState], dict[int, PocketAccount]]:
    """The pocket states and ledger accounts in `rows`, whose _POCKET_COLUMNS start at
    `offset`."""
    states, accounts = [], {}
    for row in rows:
        if row[offset] is None:  # the wallet has no spendable pocket
            break
        pocket_id, created_at, account_id, valid_from, valid_until, program_rules = row[
            offset : offset + 6
        ]
        allocation_rules, program, funder, available, currency, guarded = row[
            offset + 6 : offset + 12
        ]
        accounts[pocket_id] = PocketAccount(account_id, currency, guarded)
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
                        for period, spent in zip(PERIODS, row[offset + 12 :], strict=True)
                    }
                ),
            )
        )
    return states, accounts
