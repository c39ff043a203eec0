"""`manage.py ledger verify` on a consistent ledger and on one corrupted behind the services' back
(as a bad migration, a manual SQL fix or a bug outside the ledger could)."""

import os
import subprocess
import sys
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from funders.services import allocation_revoke, capture_refund, external_funding_account
from ledger.models import Account, Entry, Transfer
from ledger.services import hold_place, hold_post
from tests.markers import ON_POSTGRESQL

pytestmark = pytest.mark.django_db


def run_verify() -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("ledger", "verify", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def hold(pocket, merchant):
    return hold_place(
        debit=pocket.account, credit=merchant.payable_account, amount=4_000, idempotency_key="h1"
    )


@pytest.fixture
def capture(hold):
    return hold_post(hold=hold, amount=3_000, idempotency_key="c1")


@pytest.fixture
def busy_ledger(allocation, merchant, capture):
    """A ledger that has seen every kind of movement: funding, allocation, a hold left open, a
    partial capture, a refund and a revocation."""
    hold_place(
        debit=allocation.pocket.account,
        credit=merchant.payable_account,
        amount=1_000,
        idempotency_key="h2",
    )
    capture_refund(capture=capture, amount=500, idempotency_key="r1")
    allocation_revoke(allocation=allocation, reason="moved away")


def test_verify_passes_on_a_consistent_ledger(busy_ledger):
    out, err = run_verify()
    assert "every invariant holds" in out
    assert err == ""


def raise_pocket_balance(pocket, merchant, capture):
    Account.objects.filter(pk=pocket.account.pk).update(balance=12_000)
    return f"account {pocket.account.code}: balance 12000 but its entries sum to 7000"


def change_pocket_pending(pocket, merchant, capture):
    Account.objects.filter(pk=pocket.account.pk).update(pending=1_000)
    return f"account {pocket.account.code}: held 1000 but its open holds sum to 0"


def unbalance_a_transfer(pocket, merchant, capture):
    Entry.objects.create(transfer=capture, account=merchant.payable_account, amount=5)
    return f"transfer #{capture.pk}: entries sum to 5, not 0"


def add_entries_to_a_hold(pocket, merchant, capture):
    hold = capture.pending_transfer
    Entry.objects.create(transfer=hold, account=merchant.payable_account, amount=5)
    Entry.objects.create(transfer=hold, account=external_funding_account("EUR"), amount=-5)
    return f"transfer #{hold.pk}: a hold must not have entries"


def move_an_entry_to_another_currency(pocket, merchant, capture):
    usd = Account.objects.create(
        code="payable-usd", name="usd", kind="merchant_payable", currency="USD"
    )
    capture.entries.filter(account=merchant.payable_account).update(account=usd)
    return f"transfer #{capture.pk}: entry on payable-usd is in another currency"


def inflate_a_capture(pocket, merchant, capture):
    Transfer.objects.filter(pk=capture.pk).update(amount=4_001)
    return f"transfer #{capture.pk}: captures more than its hold"


def refund_more_than_captured(pocket, merchant, capture):
    Transfer.objects.create(
        kind=Transfer.Kind.REFUND, currency="EUR", amount=3_001, refund_of=capture
    )
    return f"transfer #{capture.pk}: refunded 3001, more than its 3000"


CORRUPTIONS = [
    raise_pocket_balance,
    change_pocket_pending,
    unbalance_a_transfer,
    add_entries_to_a_hold,
    move_an_entry_to_another_currency,
    inflate_a_capture,
    refund_more_than_captured,
]


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda corrupt: corrupt.__name__)
def test_verify_fails_and_names_what_is_broken(pocket, merchant, capture, corrupt):
    # given a consistent ledger, then a write that bypasses the services
    run_verify()
    expected = corrupt(pocket, merchant, capture)

    # when it is verified
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("ledger", "verify", stdout=StringIO(), stderr=err)

    # then the broken account or transfer is named
    assert expected in err.getvalue().splitlines()


# The SQLite test database lives in memory: only PostgreSQL's can be opened by another process.
another_process_can_open_the_test_database = pytest.mark.skipif(
    not ON_POSTGRESQL, reason="the SQLite test database is in memory (set DATABASE_URL)"
)


def manage_py_ledger_verify() -> subprocess.CompletedProcess:
    """`python manage.py ledger verify` in a process of its own, pointed at the test database."""
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    return subprocess.run(
        [sys.executable, "manage.py", "ledger", "verify"],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )


@another_process_can_open_the_test_database
@pytest.mark.django_db(transaction=True)
def test_manage_py_ledger_verify_exits_zero_on_a_consistent_ledger(busy_ledger):
    result = manage_py_ledger_verify()
    assert result.returncode == 0, result.stderr
    assert "every invariant holds" in result.stdout


@another_process_can_open_the_test_database
@pytest.mark.django_db(transaction=True)
def test_manage_py_ledger_verify_exits_non_zero_on_a_broken_ledger(pocket):
    Account.objects.filter(pk=pocket.account.pk).update(balance=12_000)

    result = manage_py_ledger_verify()

    assert result.returncode != 0
    assert f"account {pocket.account.code}: balance 12000" in result.stderr
