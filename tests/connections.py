"""The persistent connection's life between requests, as the tests need to play it: a new
request's health-check flag, and a server that drops the connection between two requests."""

from django.db import connection


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
