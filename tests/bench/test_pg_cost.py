"""bench.pg_cost's reading of the server's CPU, in nanoseconds, per statement."""

import pytest
from django.db import connection

from bench.pg_cost import server_cpu
from tests.markers import postgresql_only


@postgresql_only
@pytest.mark.django_db
def test_the_servers_cpu_is_read_in_nanoseconds_for_this_connection():
    # A statement that only burns this connection's server process's CPU moves the reading by
    # about what it took; a trivial one by far less.
    cpu = server_cpu()
    before = cpu()
    with connection.cursor() as cursor:
        cursor.execute("SELECT sum(i::bigint * i) FROM generate_series(1, 5000000) AS i")
    burnt = cpu() - before
    before = cpu()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    trivial = cpu() - before

    assert burnt > 50_000_000  # 50 ms
    assert 0 <= trivial < burnt / 10
