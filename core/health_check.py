"""A request's first statement standing for Django's connection health check
(CONN_HEALTH_CHECKS), which otherwise sends a `SELECT 1` before it: a round trip per request on
the hot paths (the merchant API's stored-answer lookup, the Stripe webhook's claim). The caller
marks the check done, runs its statement, and on a database error closes the connection and
runs it once more on a new one, as the check would have done."""

from typing import Any


# Any: django-stubs' BaseDatabaseWrapper has no health_check_enabled or health_check_done.
def health_check_due(connection: Any) -> bool:
    """Whether the next statement on `connection` would first be preceded by Django's health
    check: an open connection, health checks on, not yet checked in this request, and no
    transaction that a retry on a new connection would lose (there, the check runs as usual)."""
    return (
        connection.connection is not None
        and connection.health_check_enabled
        and not connection.health_check_done
        and not connection.in_atomic_block
    )
