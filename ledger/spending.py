"""Spending kept per account and Paris period (ledger.models.Spending): the periods a hold counts
in, the upsert that moves them, and the reference scan of every hold they must equal.

A hold's net is its amount while pending, its capture's amount minus that capture's refunds
once captured, 0 once voided or expired; it counts in the day, month and year (Europe/Paris)
of its created_at. The services move the rows by the change of each hold's net, in the same
transaction (and on the hot path the same statement) as the transfer that changes it; verify()
compares them with the scan; the migration that made the table fills them from the scan, and
bench.scale from its own work table of payments through the same grouping (spending_from)."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime

from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils.dateparse import parse_datetime

from core.time import PARIS
from ledger.models import Spending, Transfer

SPENDING = Spending._meta.db_table
TRANSFERS = Transfer._meta.db_table

# (account id, the hold's created_at, the change of the hold's net)
Change = tuple[int, datetime, int]
# (account id, grain, the period's first day, the change of its net)
Row = tuple[int, str, date, int]


def spending_periods(placed_at: datetime) -> tuple[tuple[str, date], ...]:
    """The day, month and year (their first days) a hold placed at `placed_at` counts in."""
    day = placed_at.astimezone(PARIS).date()
    return (
        (Spending.Grain.DAY.value, day),
        (Spending.Grain.MONTH.value, day.replace(day=1)),
        (Spending.Grain.YEAR.value, day.replace(month=1, day=1)),
    )


def spending_rows(changes: Iterable[Change]) -> list[Row]:
    """The changes summed per row, in (account, grain, start) order: every writer moves the
    rows in that one order, so two transactions never wait on each other's rows in opposite
    orders; rows that do not move left out."""
    totals: dict[tuple[int, str, date], int] = defaultdict(int)
    for account_id, placed_at, change in changes:
        for grain, start in spending_periods(placed_at):
            totals[account_id, grain, start] += change
    return [(*key, net) for key, net in sorted(totals.items()) if net]


def spending_upsert(
    rows: list[Row], connection: BaseDatabaseWrapper
) -> tuple[str, list[int | str | None]]:
    """One INSERT ... ON CONFLICT DO UPDATE adding `rows` (PostgreSQL and SQLite alike)."""
    values = ", ".join(["(%s, %s, %s, %s)"] * len(rows))
    params: list[int | str | None] = []
    for account_id, grain, start, net in rows:
        params += [account_id, grain, connection.ops.adapt_datefield_value(start), net]
    sql = f"""
        INSERT INTO {SPENDING} (account_id, grain, start, net) VALUES {values}
        ON CONFLICT (account_id, grain, start) DO UPDATE SET net = {SPENDING}.net + excluded.net
    """
    return sql, params


def _hold_nets(*, refunded: str, refunds: str = "") -> str:
    """Each hold's net as it stands, from the hold `h`, its resolution `r` and what that
    resolution's refunds sum to (`refunded`, NULL for none; `refunds` the FROM items it needs,
    if any): what Spending keeps, computed again from the immutable transfers. The one text of
    the rule, for the paths that read a few holds and for the scan of every hold alike;
    `{where}` narrows the holds.

    A hold is told by the accounts it names (a transfer names them exactly when it is pending:
    the CHECK transfer_hold_names_its_accounts), not by is_pending: PostgreSQL then cannot read
    a pocket's holds through the partial index of every hold's expiry (transfer_hold_expiry_idx,
    WHERE is_pending, with no account in it), which a plan made on statistics older than the
    holds chose over the index on (debit_account_id, created_at): the hot path's read, planned
    once per connection, then scanned every hold of the platform for each pocket (issue 19,
    part 11: 1.9 ms a pocket at 10,551 holds)."""
    return f"""
    SELECT h.debit_account_id AS account_id, h.created_at,
           CASE WHEN r.id IS NULL THEN h.amount
                WHEN r.kind = 'capture' THEN r.amount - COALESCE({refunded}, 0)
                ELSE 0 END AS net
    FROM {TRANSFERS} h LEFT JOIN {TRANSFERS} r ON r.pending_transfer_id = h.id {refunds}
    WHERE h.debit_account_id IS NOT NULL AND {{where}}
"""


# A few holds' nets (the pockets' usage, the hot path): each capture's refunds summed by a lookup
# through the index on refund_of_id. A grouped subquery joined instead would be summed over every
# refund of the ledger first: PostgreSQL does not push a join's condition into a GROUP BY.
HOLD_NETS = _hold_nets(
    refunded=f"(SELECT SUM(f.amount) FROM {TRANSFERS} f WHERE f.refund_of_id = r.id)"
)


def spending_from(nets: str) -> str:
    """Spending per row, (account id, grain, start, net), on PostgreSQL, from `nets`, a query of
    each hold's (account_id, created_at, net): grouped per account and Paris day, the months and
    years summed from the days (a few rows per account, not every hold again). Also how
    bench.scale fills the table from its own work table of payments."""
    return f"""
    WITH days AS (
        SELECT n.account_id, (n.created_at AT TIME ZONE 'Europe/Paris')::date AS day,
            SUM(n.net) AS net
        FROM ({nets}) n
        GROUP BY 1, 2
    )
    SELECT account_id, 'day', day, net FROM days
    UNION ALL
    SELECT account_id, 'month', date_trunc('month', day)::date, SUM(net) FROM days
    GROUP BY account_id, date_trunc('month', day)
    UNION ALL
    SELECT account_id, 'year', date_trunc('year', day)::date, SUM(net) FROM days
    GROUP BY account_id, date_trunc('year', day)
"""


# Spending as the holds make it, per row, on PostgreSQL: the scan grouped in the database (a
# million people's holds would be millions of rows to bring back to Python). Each hold joined to
# its resolution and to that resolution's refunds summed once (a lookup per capture was nine
# million index probes at a million).
EXPECTED_POSTGRESQL = spending_from(
    _hold_nets(
        refunded="f.amount",
        refunds=f"""LEFT JOIN (
            SELECT refund_of_id, SUM(amount) AS amount FROM {TRANSFERS}
            WHERE refund_of_id IS NOT NULL GROUP BY refund_of_id
        ) f ON f.refund_of_id = r.id""",
    ).format(where="TRUE")
)


def expected_rows(connection: BaseDatabaseWrapper) -> dict[tuple[int, str, date], int]:
    """Spending as the scan of every hold makes it, per (account id, grain, start); on SQLite
    (no time zones in its SQL) the holds' periods are worked out here."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(EXPECTED_POSTGRESQL)
            return {
                (account_id, grain, start): int(net)
                for account_id, grain, start, net in cursor.fetchall()
            }
        cursor.execute(HOLD_NETS.format(where="1 = 1"))
        changes = [(account_id, _aware(at), net) for account_id, at, net in cursor.fetchall()]
    totals: dict[tuple[int, str, date], int] = defaultdict(int)
    for account_id, placed_at, net in changes:
        for grain, start in spending_periods(placed_at):
            totals[account_id, grain, start] += net
    return dict(totals)


def _aware(value: datetime | str) -> datetime:
    """A created_at as SQLite's cursor gives it (text, in UTC) made an aware datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = parse_datetime(value)
    assert parsed is not None  # written by Django, always ISO 8601
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
