"""core/prepared.py: the hot path's statements are prepared once per connection, by name, and
reused, bind every int as a bigint, and are logged with their values like any other statement;
a statement and its COMMIT go in one message."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from core.prepared import prepared_cursor
from tests.markers import postgresql_only

pytestmark = [postgresql_only, pytest.mark.django_db]

STATEMENT = "SELECT %s + 1, pg_typeof(%s)::text"


def prepared_like(fragment: str) -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT statement, parameter_types::text FROM pg_prepared_statements "
            "WHERE statement LIKE %s",
            [f"%{fragment}%"],
        )
        return cursor.fetchall()


def run(value: int) -> tuple[int, str]:
    with prepared_cursor() as cursor:
        cursor.execute(STATEMENT, [value, value])
        return cursor.fetchone()


def test_a_statement_is_prepared_once_and_reused_whatever_the_size_of_its_ints():
    # A small int, then one past a 32-bit integer: psycopg would type them smallint and bigint,
    # two statements; both are bound as bigints to one.
    assert run(7) == (8, "bigint")
    assert run(2**40) == (2**40 + 1, "bigint")
    assert run(-(2**62)) == (-(2**62) + 1, "bigint")

    ((statement, types),) = prepared_like("$1 + 1, pg_typeof")
    # The text of the message that prepared it: its transaction's BEGIN first, if it began it.
    assert "PREPARE aidwallet_" in statement and types == "{bigint,bigint}"
    assert "AS SELECT $1 + 1, pg_typeof($2)::text;" in statement


def test_the_orms_statements_are_not_prepared():
    from django.contrib.auth.models import Group

    for _ in range(3):
        list(Group.objects.filter(name="x"))

    assert prepared_like("auth_group") == []


def test_a_prepared_statement_runs_in_the_callers_transaction():
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("CREATE TEMPORARY TABLE seen (n bigint) ON COMMIT DROP")
        with prepared_cursor() as cursor:
            cursor.execute("INSERT INTO seen VALUES (%s)", [5])
        with connection.cursor() as cursor:
            cursor.execute("SELECT n FROM seen")
            assert cursor.fetchall() == [(5,)]


def test_the_query_log_shows_the_statement_with_its_values():
    with CaptureQueriesContext(connection) as sent:
        run(41)

    assert [query["sql"] for query in sent.captured_queries] == [
        "SELECT 41 + 1, pg_typeof(41)::text"
    ]


def test_a_statement_runs_its_generic_plan_from_its_first_run():
    # PostgreSQL would plan the first five runs for their values (the read under the wallet's
    # lock: 1-3 ms of its processor each) on every new connection, before it kept the generic
    # plan (config/settings.py).
    with prepared_cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM django_migrations WHERE app = %s AND id > %s", ["x", 1]
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements "
            "WHERE statement LIKE '%%FROM django_migrations WHERE app = $1%%'"
        )
        assert cursor.fetchall() == [(1, 0)]
