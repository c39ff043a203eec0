"""The persistent connection's life between requests, as the tests need to play it: a new
request's health-check flag, a server that drops the connection between two requests, and the
messages the connection sends (its round trips); the test database's address, for a
connection of a test's own."""

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection
from psycopg import conninfo, pq


def database_url() -> str:
    """The test database's connection string, for psycopg connections outside Django's."""
    settings = connection.settings_dict
    return conninfo.make_conninfo(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        host=settings["HOST"] or None,
        port=settings["PORT"] or None,
    )


def a_new_request() -> None:
    # What request_started does to a persistent connection (the test client disconnects it).
    connection.health_check_done = False


def drop_the_connection() -> int:
    """The server ends this connection's backend, as a restart or an idle timeout would (the
    client learns it at its next statement); the backend's process id."""
    dropped = connection.connection.info.backend_pid
    other = connection.copy()
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [dropped])
    finally:
        other.close()
    a_new_request()
    return dropped


@contextmanager
def messages_sent() -> Iterator[list[str]]:
    """What this connection sends PostgreSQL meanwhile, read from libpq's trace of the wire
    protocol: one entry per message that waits for the server's answer (a simple query's text,
    or an extended query's Sync), so one per round trip, BEGIN and COMMIT included where
    psycopg sends them on their own. The list is filled when the block ends."""
    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    sent: list[str] = []
    with tempfile.TemporaryFile() as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield sent
        finally:
            pgconn.untrace()
            trace.seek(0)
            for line in trace.read().decode().splitlines():
                direction, _, kind, *text = line.split("\t")
                if direction == "F" and kind in ("Query", "Sync"):
                    sent.append(text[0].strip().strip('"') if text else kind)
