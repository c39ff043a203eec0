"""What test_read_replica.py runs in a process of its own, Django set up on a real primary
(DATABASE_URL) and its streaming replica (DATABASE_REPLICA_URL): the reports read the replica,
and while the replica's replay is paused, nothing that must see the latest write reads it.
Exits 0 when every check holds; an AssertionError otherwise."""

import time

import django

django.setup()

from django.db import connections, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from core.replica import replica_reads  # noqa: E402
from engine.request import AuthorizationRequest  # noqa: E402
from funders import reports  # noqa: E402
from merchants.payments import merchant_place  # noqa: E402
from reconciliation.report import reconciliation_build  # noqa: E402
from tests.factories import (  # noqa: E402
    BeneficiaryFactory,
    make_allocation,
    make_merchant,
    make_program,
)
from wallet.authorize import authorize  # noqa: E402
from wallet.models import Beneficiary, Pocket  # noqa: E402


def scalar(alias: str, sql: str):
    with connections[alias].cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def caught_up() -> None:
    """Until the replica has replayed everything the primary wrote."""
    target = scalar("default", "SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        behind = scalar("replica", f"SELECT pg_wal_lsn_diff('{target}', pg_last_wal_replay_lsn())")
        if behind <= 0:
            return
        time.sleep(0.05)
    raise AssertionError("the replica did not catch up within 20 s")


class Queries:
    """The statements each database received."""

    def __init__(self):
        self.count = {"default": 0, "replica": 0}

    def __enter__(self):
        self.wrappers = []
        for alias in self.count:

            def wrapper(execute, sql, params, many, context, alias=alias):
                self.count[alias] += 1
                return execute(sql, params, many, context)

            manager = connections[alias].execute_wrapper(wrapper)
            manager.__enter__()
            self.wrappers.append(manager)
        return self

    def __exit__(self, *exc_info):
        for manager in reversed(self.wrappers):
            manager.__exit__(*exc_info)


def allocated(program) -> int:
    return reports.program_figures(programs=[program])[program.pk].allocated


def main() -> None:
    started = time.monotonic()
    assert scalar("replica", "SELECT pg_is_in_recovery()") is True
    program = make_program(funded=1_000_000)
    person = BeneficiaryFactory()
    make_allocation(program=program, beneficiary=person, amount=1_000)
    merchant = make_merchant()
    caught_up()

    # The reports, dashboards and the reconciliation read the replica, and only it.
    with Queries() as queries, replica_reads():
        assert allocated(program) == 1_000
        assert not reconciliation_build().failures
    assert queries.count["replica"] > 0
    assert queries.count["default"] == 0, queries.count

    # The replica stops replaying: it lags behind every write from now on.
    scalar("replica", "SELECT pg_wal_replay_pause()::text")
    try:
        make_allocation(program=program, beneficiary=person, amount=5_000)

        # A report may be a moment old: it does not see the new grant yet.
        with replica_reads():
            assert allocated(program) == 1_000
        # Outside such a block, every read is the primary's.
        assert allocated(program) == 6_000
        assert Pocket.objects.filter(wallet=person.wallet).count() == 2

        # The payment path: only the new pocket covers 3,000 cents, and it is approved.
        decision = authorize(
            request=AuthorizationRequest(
                amount=3_000,
                currency="EUR",
                merchant=merchant_place(merchant),
                at=timezone.now(),
                channel="api",
            ),
            wallet=person.wallet,
            credit_account=merchant.payable_account,
            merchant_id=merchant.pk,
            idempotency_key="replica-scenario-1",
        )
        assert decision.status == "approved", (decision.status, decision.reason)

        # Inside a block, a transaction on the primary reads the primary...
        with replica_reads(), transaction.atomic():
            assert allocated(program) == 6_000
        # ...and so does everything after the block's first write.
        with replica_reads():
            assert allocated(program) == 1_000
            Beneficiary.objects.filter(pk=person.pk).update(postcode="69001")
            assert allocated(program) == 6_000
            assert Beneficiary.objects.get(pk=person.pk).postcode == "69001"
        # An object read from the replica is saved on the primary (the replica refuses writes).
        with replica_reads():
            stale = Beneficiary.objects.get(pk=person.pk)
            assert stale._state.db == "replica"
            stale.postcode = "73000"
            stale.save(update_fields=["postcode"])
        assert Beneficiary.objects.get(pk=person.pk).postcode == "73000"
    finally:
        scalar("replica", "SELECT pg_wal_replay_resume()::text")

    caught_up()
    with replica_reads():
        assert allocated(program) == 6_000
    print(f"replica scenario: every check holds ({time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    main()
