"""The spending the ledger keeps per account and Paris period (ledger.models.Spending) against
the scan of every hold it replaces (wallet/usage.py before issue 19's part 7): random payment
life cycles across Paris midnight, a change of the clocks, month and year ends, for a pocket
whose aid starts mid-day, through the ORM's services and, on PostgreSQL, the one-statement
ones too. Each example runs in a savepoint rolled back at its end."""

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.one_statement import OneStatement
from engine.periods import PERIODS, period_start
from engine.rules import PocketRules
from ledger.models import Spending, Transfer
from ledger.services import (
    hold_expire,
    hold_place,
    hold_place_in,
    hold_post,
    hold_release,
    hold_void,
    holds_resolve_in,
    refund_post,
    refunds_post_in,
    spending_rebuild,
)
from ledger.spending import HOLD_NETS
from ledger.verify import verify
from tests.factories import make_allocation, make_merchant
from tests.markers import postgresql_only
from wallet.usage import pockets_usage

pytestmark = pytest.mark.django_db

# Instants around the bounds (UTC): a year's last second and its first in Paris, both sides of
# the night the clocks go forward (28 March 2027, 02:00 to 03:00), the month's end.
MOMENTS = [
    datetime(2026, 12, 31, 22, 59, 59, tzinfo=UTC),  # 23:59:59 in Paris
    datetime(2026, 12, 31, 23, 0, tzinfo=UTC),  # midnight, 1 January 2027
    datetime(2027, 3, 27, 22, 59, 59, tzinfo=UTC),  # 23:59:59, Saturday 27 March
    datetime(2027, 3, 28, 0, 30, tzinfo=UTC),  # 01:30, before the clocks change
    datetime(2027, 3, 28, 1, 30, tzinfo=UTC),  # 03:30, after
    datetime(2027, 3, 28, 8, 29, 59, tzinfo=UTC),  # just before the aid's start
    datetime(2027, 3, 28, 8, 30, tzinfo=UTC),  # the aid's start, mid-day
    datetime(2027, 3, 28, 21, 59, 59, tzinfo=UTC),  # 23:59:59, Sunday 28 March (CEST)
    datetime(2027, 3, 29, 6, 0, tzinfo=UTC),  # Monday, a new week
    datetime(2027, 3, 31, 21, 59, 59, tzinfo=UTC),  # the month's last second
    datetime(2027, 3, 31, 22, 0, tzinfo=UTC),  # 1 April
]
VALID_FROM = datetime(2027, 3, 28, 8, 30, tzinfo=UTC)

OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["place", "capture", "void", "expire", "release", "refund"]),
        st.sampled_from(MOMENTS),
        st.integers(min_value=0, max_value=50),  # which hold or capture, modulo their number
        st.integers(min_value=1, max_value=900),  # an amount, bounded by what the step allows
        st.booleans(),  # on PostgreSQL, through the one-statement services
    ),
    min_size=1,
    max_size=25,
)


def reference_usage(account_id: int, at: datetime, valid_from: datetime | None) -> dict[str, int]:
    """What wallet/usage.py read before Spending: every hold's net, summed from each period's
    start with no upper bound."""
    with connection.cursor() as cursor:
        cursor.execute(HOLD_NETS.format(where="h.debit_account_id = %s"), [account_id])
        holds = cursor.fetchall()
    spent = {}
    for period in PERIODS:
        start = period_start(period, at, valid_from=valid_from)
        spent[period] = sum(
            net
            for _account, created_at, net in holds
            if start is None or _aware(created_at) >= start
        )
    return spent


def _aware(value):
    if isinstance(value, str):  # SQLite's cursor
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class Payments:
    pocket_account: object
    payable: object
    holds: list = field(default_factory=list)  # pending holds
    captures: list = field(default_factory=list)  # (capture, refundable)


def step(state: Payments, operation: str, index: int, amount: int, one_statement: bool) -> None:
    one_statement = one_statement and connection.vendor == "postgresql"
    if operation == "place":
        if state.pocket_account.available < amount:
            return
        if one_statement:
            writes = OneStatement()
            hold = hold_place_in(
                writes, debit=state.pocket_account, credit=state.payable, amount=amount
            )
            writes.run()
        else:
            hold = hold_place(
                debit=state.pocket_account,
                credit=state.payable,
                amount=amount,
                idempotency_key=None,
            )
        state.holds.append(hold)
    elif operation in ("capture", "void", "expire", "release") and state.holds:
        hold = state.holds.pop(index % len(state.holds))
        part = 1 + amount % hold.amount
        if operation == "capture":
            if one_statement:
                writes = OneStatement()
                [capture] = holds_resolve_in(writes, [(hold, part)])
                writes.run()
            else:
                capture = hold_post(hold=hold, amount=part, idempotency_key=None)
            capture.pending_transfer = hold
            state.captures.append([capture, part])
        elif operation == "void":
            if one_statement:
                writes = OneStatement()
                holds_resolve_in(writes, [(hold, 0)])
                writes.run()
            else:
                hold_void(hold=hold, idempotency_key=None)
        elif operation == "expire":
            hold_expire(hold=hold)
        else:
            rest = hold_release(hold=hold, amount=part)
            if rest is not None:
                state.holds.append(rest)
    elif operation == "refund" and state.captures:
        entry = state.captures[index % len(state.captures)]
        capture, refundable = entry
        if refundable == 0:
            return
        part = 1 + amount % refundable
        if one_statement:
            writes = OneStatement()
            refunds_post_in(writes, [(capture, part, state.payable, state.pocket_account)])
            writes.run()
        else:
            refund_post(capture=capture, amount=part, to=state.pocket_account, idempotency_key=None)
        entry[1] = refundable - part
    state.pocket_account.refresh_from_db()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=OPERATIONS)
def test_spending_kept_equals_the_scan_of_the_holds(operations):
    with transaction.atomic():
        allocation = make_allocation(amount=100_000, valid_from=VALID_FROM, days=None)
        account = allocation.pocket.account
        account.refresh_from_db()
        state = Payments(pocket_account=account, payable=make_merchant().payable_account)
        for operation, moment, index, amount, one_statement in operations:
            with time_machine.travel(moment, tick=False):
                step(state, operation, index, amount, one_statement)
        for valid_from in (VALID_FROM, None):
            rules = PocketRules(valid_from=valid_from)
            for at in MOMENTS:
                usage = pockets_usage([(account.pk, rules)], at=at, every_period=True)
                expected = reference_usage(account.pk, at, valid_from)
                assert usage[account.pk].spent == expected, (at, valid_from)
        assert verify() == []
        transaction.set_rollback(True)


def test_verify_reports_a_row_that_differs_from_the_holds(pocket, merchant):
    account = pocket.account
    hold_place(debit=account, credit=merchant.payable_account, amount=700, idempotency_key=None)
    assert verify() == []
    row = Spending.objects.get(account=account, grain=Spending.Grain.MONTH)
    Spending.objects.filter(pk=row.pk).update(net=699)
    problems = [str(problem) for problem in verify()]
    assert problems == [
        f"account {account.code}: spending of the month from {row.start} kept as 699 but its "
        "holds net 700"
    ]


def test_verify_reports_a_missing_row(pocket, merchant):
    account = pocket.account
    hold_place(debit=account, credit=merchant.payable_account, amount=700, idempotency_key=None)
    Spending.objects.filter(account=account, grain=Spending.Grain.DAY).delete()
    assert len(verify()) == 1


def test_rebuild_makes_the_rows_the_services_keep(pocket, merchant):
    account = pocket.account
    hold = hold_place(
        debit=account, credit=merchant.payable_account, amount=700, idempotency_key=None
    )
    capture = hold_post(hold=hold, amount=500, idempotency_key=None)
    refund_post(capture=capture, amount=120, to=account, idempotency_key=None)
    kept = sorted(Spending.objects.values_list("account_id", "grain", "start", "net"))
    assert [net for *_key, net in kept] == [380, 380, 380]
    spending_rebuild()
    assert sorted(Spending.objects.values_list("account_id", "grain", "start", "net")) == kept
    assert Transfer.objects.filter(is_pending=True).count() == 1


@postgresql_only
def test_a_pockets_holds_are_read_through_its_account_whatever_the_statistics(pocket, merchant):
    """The hot path's read is planned once per connection (core/prepared.py), on the statistics
    of that moment: taken before any hold, as on a new platform, they made PostgreSQL read one
    pocket's holds through the partial index of every hold's expiry, all of them, for each
    pocket of each payment (issue 19, part 11). Holds told by their accounts it cannot."""
    table = Transfer._meta.db_table
    with connection.cursor() as cursor:
        # A ledger's grants (transfers with entries, naming no account), then the statistics.
        cursor.execute(
            f"""INSERT INTO {table} (kind, currency, amount, fingerprint, is_pending,
                created_at, metadata)
            SELECT 'grant', 'EUR', 1, '', false, now(), '{{}}' FROM generate_series(1, 5000)"""
        )
        cursor.execute(f"ANALYZE {table}")
        # Then the holds of another pocket.
        cursor.execute(
            f"""INSERT INTO {table} (kind, currency, amount, fingerprint, is_pending,
                debit_account_id, credit_account_id, created_at, metadata)
            SELECT 'hold', 'EUR', 1, '', true, %s, %s, now(), '{{}}'
            FROM generate_series(1, 2000)""",
            [pocket.account_id, merchant.payable_account_id],
        )
    nets = HOLD_NETS.format(where="h.debit_account_id = $1 AND h.created_at < $2")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        cursor.execute(f"PREPARE nets(bigint, timestamptz) AS SELECT SUM(net) FROM ({nets}) e")
        try:
            cursor.execute("EXPLAIN EXECUTE nets(0, now())")
            plan = "\n".join(line for (line,) in cursor.fetchall())
        finally:
            cursor.execute("DEALLOCATE nets")
    assert "transfer_hold_expiry_idx" not in plan, plan
    assert "Index Scan using transfer_hold_account_at_idx on wallet_transfer h" in plan, plan
