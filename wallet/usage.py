"""What each pocket already spent in each capped period, read from the ledger.

A payment counts against the periods of the moment it was authorized, for what it finally
took: the hold's amount while pending, the captured amount once posted, nothing once voided or
expired; refunds of its capture come off it. So a cap counts approved amounts net of reversals
and refunds, and a refund gives room back in the period of the payment it refunds.

The ledger keeps that per account and Paris day, month and year as holds change
(ledger.models.Spending, ledger/spending.py): a period's spending is a few of those rows, not
a scan of every hold since the period began (issue 19)."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime

from django.db import connection

from engine.periods import PERIODS, Usage, period_start
from engine.rules import PocketRules
from ledger.models import Spending
from ledger.spending import HOLD_NETS, SPENDING

DAY, MONTH, YEAR = Spending.Grain.DAY, Spending.Grain.MONTH, Spending.Grain.YEAR


def pockets_usage(
    pockets: Iterable[tuple[int, PocketRules]], *, at: datetime, every_period: bool = False
) -> dict[int, Usage]:
    """Usage per account id, for the (account id, rules) pairs given; one query for all.

    Only the periods the rules cap are counted, unless `every_period`: then all of them, for
    every pocket, so that the decision's record can replay other rules (funders/dry_runs.py)."""
    wanted: dict[int, tuple[str, ...]] = {}
    valid_from: dict[int, datetime] = {}
    for account_id, rules in pockets:
        periods = PERIODS if every_period else tuple(period for period, _ in rules.limits.caps())
        if periods:
            wanted[account_id] = periods
            if "validity" in periods and rules.valid_from is not None:
                valid_from[account_id] = rules.valid_from
    if not wanted:
        return {}
    # The first day of each calendar period around `at`, in Paris (the same for every pocket).
    first = {
        period: start.date()
        for period in PERIODS[:-1]
        if (start := period_start(period, at, valid_from=None)) is not None
    }
    adapt_date = connection.ops.adapt_datefield_value
    accounts = list(wanted)
    marks = ", ".join(["%s"] * len(accounts))
    # The days from the week's Monday, the months from this one, every year; then what holds
    # placed before an aid's start net, normally nothing, which the validity cap leaves out.
    # Rows after `at` count too, as holds placed after it do: a payment decided while this
    # one waited for the wallet's lock counts all the same.
    parts = [
        f"""SELECT account_id, grain, start, net FROM {SPENDING}
            WHERE account_id IN ({marks})
              AND (grain = %s AND start >= %s OR grain = %s AND start >= %s OR grain = %s)"""
    ]
    params: list[object] = [*accounts, DAY, adapt_date(first["week"]), MONTH]
    params += [adapt_date(first["month"]), YEAR]
    for account_id, start in valid_from.items():
        where = "h.debit_account_id = %s AND h.created_at < %s"
        parts.append(f"SELECT account_id, NULL, NULL, net FROM ({HOLD_NETS.format(where=where)}) e")
        params += [account_id, connection.ops.adapt_datetimefield_value(start)]
    sums: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(PERIODS, 0))
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        for account_id, grain, start, net in cursor.fetchall():
            _add(sums[account_id], grain, _date(start), int(net), first)
    return {
        account_id: Usage(spent={period: sums[account_id][period] for period in periods})
        for account_id, periods in wanted.items()
    }


def _add(
    spent: dict[str, int], grain: str | None, start: date | None, net: int, first: dict[str, date]
) -> None:
    """Count one row of Spending (or, grain None, a hold before the aid's start) in `spent`."""
    if grain is None:
        spent["validity"] -= net
    elif grain == DAY:
        spent["week"] += net
        if start is not None and start >= first["day"]:
            spent["day"] += net
    elif grain == MONTH:
        spent["month"] += net
    else:
        spent["validity"] += net
        if start is not None and start >= first["year"]:
            spent["year"] += net


def _date(value: date | str | None) -> date | None:
    """A start as the cursor gives it: a date, or on SQLite its ISO text."""
    return date.fromisoformat(value) if isinstance(value, str) else value
