"""The backups of docs/BACKUPS.md, tried: a database after a realistic scenario (grants,
payments, captures, refunds, a reversal, a settlement) is dumped with `pg_dump -Fc`, restored
into a new database with `pg_restore`, and the copy passes `manage.py ledger verify` and tells
the same money in `manage.py reconcile`. Then a point-in-time restore on a PostgreSQL server of
the test's own: a base backup, archived write-ahead log, a change to keep, a table dropped by
mistake, and a recovery to the instant between the two."""

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from bench import pgcluster
from funders.services import program_fund
from ledger.models import Entry
from merchants.payments import payment_authorize, payment_capture, payment_refund, payment_reverse
from merchants.settlement import settlement_close_due
from tests.factories import (
    BeneficiaryFactory,
    make_allocation,
    make_merchant,
    make_payment_code,
    make_program,
)
from tests.markers import postgresql_only
from tests.operations.outage import closed_port

ROOT = Path(__file__).resolve().parents[2]

# The scenario's data must be committed for pg_dump, another process, to see it.
pytestmark = [postgresql_only, pytest.mark.django_db(transaction=True)]


def build_scenario() -> None:
    """Two programs, five grants, two shops; payments captured whole or in part, refunded,
    reversed, left held; the shops' day settled."""
    food = make_program(funded=100_000)
    program_fund(program=food, amount=20_000, idempotency_key="top-up")
    mobility = make_program(funded=50_000)
    people = [BeneficiaryFactory() for _ in range(5)]
    for person, program, amount in zip(
        people,
        [food, food, food, mobility, mobility],
        [30_000, 20_000, 10_000, 15_000, 2_000],
        strict=True,
    ):
        make_allocation(program=program, beneficiary=person, amount=amount)
    shop, bakery = make_merchant(), make_merchant()

    def pay(merchant, person, amount):
        return payment_authorize(
            merchant=merchant,
            amount=amount,
            currency="EUR",
            payment_code=make_payment_code(person.wallet),
        )

    paid = pay(shop, people[0], 4_000)
    payment_capture(merchant=shop, decision=paid, idempotency_key="c1")
    payment_refund(merchant=shop, decision=paid, amount=1_500, idempotency_key="r1")
    partly = pay(bakery, people[0], 6_000)
    payment_capture(merchant=bakery, decision=partly, amount=5_000, idempotency_key="c2")
    pay(bakery, people[1], 2_000)  # left held
    reversed_ = pay(shop, people[2], 2_500)
    payment_reverse(merchant=shop, decision=reversed_, idempotency_key="v1")
    captured = pay(shop, people[3], 3_000)
    payment_capture(merchant=shop, decision=captured, idempotency_key="c3")
    assert settlement_close_due(until=timezone.now() + timedelta(seconds=1))


def database_url(name: str) -> str:
    source = connection.settings_dict
    return (
        f"postgres://{source['USER'] or 'postgres'}@{source['HOST'] or '127.0.0.1'}:"
        f"{source['PORT'] or 5432}/{name}"
    )


def manage(url: str, *args: str) -> subprocess.CompletedProcess:
    """A management command on the database at `url`, in a process of its own, as an operator
    runs it on the restored copy."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=os.environ | {"DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=300,
    )


def without_clock(report: str) -> str:
    """The reconciliation's text without its first line, "as of" the minute it ran (in the
    settings' language): two runs a moment apart."""
    header, _, figures = report.partition("\n")
    assert header.startswith(("Reconciliation as of", "Rapprochement au")), header
    return figures


def verified(url: str) -> str:
    """The copy at `url` passes ledger verify and reconciles; returns the reconciliation."""
    checked = manage(url, "ledger", "verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "every invariant holds" in checked.stdout
    reconciled = manage(url, "reconcile")
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    return reconciled.stdout


def count_entries(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {Entry._meta.db_table}").fetchone()[0]


@pytest.fixture
def scenario_dump(tmp_path):
    """The scenario, built in the tests' database and dumped in PostgreSQL's custom format."""
    build_scenario()
    path = tmp_path / "aidwallet.dump"
    source_url = database_url(connection.settings_dict["NAME"])
    subprocess.run(["pg_dump", "-Fc", "-f", str(path), source_url], check=True, timeout=300)
    return path, source_url


def test_a_dump_restored_into_a_new_database_verifies_and_reconciles(scenario_dump):
    dump, source_url = scenario_dump
    # Beside the tests' database, named after it: CI's is test_test.
    copy = f"{connection.settings_dict['NAME']}_restored"
    admin_url = database_url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{copy}"')
        conn.execute(f'CREATE DATABASE "{copy}"')
    try:
        subprocess.run(
            ["pg_restore", "--exit-on-error", "--no-owner", "-d", database_url(copy), str(dump)],
            check=True,
            timeout=300,
        )
        assert count_entries(database_url(copy)) == Entry.objects.count() > 20
        # The copy tells the same money as the source, to the cent.
        assert without_clock(verified(database_url(copy))) == without_clock(verified(source_url))

        # The checks would see a damaged copy: an entry lost, the ledger no longer balances.
        with psycopg.connect(database_url(copy), autocommit=True) as conn:
            conn.execute("SET session_replication_role = replica")  # past the ledger's triggers
            conn.execute(
                f"DELETE FROM {Entry._meta.db_table} WHERE id = "
                f"(SELECT max(id) FROM {Entry._meta.db_table})"
            )
        assert manage(database_url(copy), "ledger", "verify").returncode == 1
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')


@pytest.mark.skipif(
    not pgcluster.available(), reason="needs PostgreSQL's server programs (initdb, pg_ctl)"
)
def test_a_point_in_time_restore_undoes_a_mistake_and_keeps_what_came_before(scenario_dump):
    dump, _ = scenario_dump
    with pgcluster.Cluster(closed_port(), archive=True) as cluster:
        cluster.init()
        cluster.start()
        url = cluster.url("aidwallet")
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE aidwallet")
        subprocess.run(
            ["pg_restore", "--exit-on-error", "--no-owner", "-d", url, str(dump)],
            check=True,
            timeout=300,
        )
        entries = count_entries(url)
        # The night's base backup.
        base = cluster.root / "base"
        cluster.run("pg_basebackup", "-d", cluster.url("postgres"), "-D", str(base), "-c", "fast")

        with psycopg.connect(url, autocommit=True) as conn:
            # A change after the base backup, found again only in the archived log...
            conn.execute("UPDATE merchants_merchant SET trade_name = 'Après la sauvegarde'")
            time.sleep(0.5)  # the target falls between two commits, not on one
            target = conn.execute("SELECT now()").fetchone()[0]
            time.sleep(0.5)
            # ...and the mistake to undo: the ledger's entries dropped.
            conn.execute(f"DROP TABLE {Entry._meta.db_table} CASCADE")
        cluster.archive_now()

        cluster.recover(base, target_time=target)

        with psycopg.connect(url) as conn:
            names = {row[0] for row in conn.execute("SELECT trade_name FROM merchants_merchant")}
        assert names == {"Après la sauvegarde"}
        assert count_entries(url) == entries
        verified(url)
