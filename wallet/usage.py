"""What each pocket already spent in each capped period, read from the ledger.

A payment counts against the periods of the moment it was authorized, for what it finally
took: the hold's amount while pending, the captured amount once posted, nothing once voided or
expired; refunds of its capture come off it. So a cap counts approved amounts net of reversals
and refunds, and a refund gives room back in the period of the payment it refunds."""

from collections.abc import Iterable
from datetime import datetime

from django.db import connection

from engine.periods import PERIODS, Usage, period_start
from engine.rules import PocketRules
from ledger.models import Transfer

TRANSFERS = Transfer._meta.db_table


def pockets_usage(
    pockets: Iterable[tuple[int, PocketRules]], *, at: datetime, every_period: bool = False
) -> dict[int, Usage]:
    """Usage per account id, for the (account id, rules) pairs given; one query for all.

    Only the periods the rules cap are counted, unless `every_period`: then all of them, for
    every pocket, so that the decision's record can replay other rules (funders/dry_runs.py)."""
    starts: dict[int, dict[str, datetime | None]] = {}
    for account_id, rules in pockets:
        periods = PERIODS if every_period else [period for period, _ in rules.limits.caps()]
        if periods:
            starts[account_id] = {
                period: period_start(period, at, valid_from=rules.valid_from) for period in periods
            }
    if not starts:
        return {}
    columns, params = [], []
    for account_id, by_period in starts.items():
        for start in by_period.values():
            if start is None:
                columns.append("SUM(net) FILTER (WHERE account_id = %s)")
                params.append(account_id)
            else:
                columns.append("SUM(net) FILTER (WHERE account_id = %s AND created_at >= %s)")
                params += [account_id, connection.ops.adapt_datetimefield_value(start)]
    accounts = list(starts)
    bounds = [start for by_period in starts.values() for start in by_period.values()]
    since = "" if None in bounds else "AND h.created_at >= %s"
    # No upper bound at `at`: a payment decided while this one waited for the wallet lock was
    # created after `at` was taken, and it counts all the same.
    where = [True, *accounts] + (
        [] if None in bounds else [connection.ops.adapt_datetimefield_value(min(bounds))]
    )
    # Raw SQL on the hot path: the same query through the ORM's conditional aggregates cost
    # several milliseconds of expression compiling per authorization, the database well under one.
    sql = f"""
        WITH holds AS (
            SELECT h.debit_account_id AS account_id, h.created_at,
                   CASE WHEN r.id IS NULL THEN h.amount
                        WHEN r.kind = 'capture' THEN r.amount - COALESCE((
                            SELECT SUM(f.amount) FROM {TRANSFERS} f WHERE f.refund_of_id = r.id
                        ), 0)
                        ELSE 0 END AS net
            FROM {TRANSFERS} h LEFT JOIN {TRANSFERS} r ON r.pending_transfer_id = h.id
            WHERE h.is_pending = %s AND h.debit_account_id IN ({", ".join(["%s"] * len(accounts))})
                  {since}
        )
        SELECT {", ".join(columns)} FROM holds
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, where + params)
        totals = iter(cursor.fetchone())
    spent = {
        # PostgreSQL's SUM of bigints is a numeric: back to int, never a Decimal in an amount.
        account_id: {period: int(next(totals) or 0) for period in by_period}
        for account_id, by_period in starts.items()
    }
    return {account_id: Usage(spent=spent[account_id]) for account_id in starts}
