"""The database away, for real: the default connection pointed at a server that is not there,
so that the driver itself fails to connect, as it does while PostgreSQL is down or restarting."""

import socket
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections


def closed_port() -> int:
    """A port nothing listens on: a connection to it is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def database_unreachable() -> Iterator[None]:
    """Requests made inside reach a connection that cannot connect: PostgreSQL refuses on a
    closed port, SQLite cannot open a file in a folder that does not exist. The test's own
    connection (and its transaction) is set aside and put back untouched."""
    real = connections[DEFAULT_DB_ALIAS]
    away = connections.create_connection(DEFAULT_DB_ALIAS)
    if away.vendor == "postgresql":
        away.settings_dict = away.settings_dict | {"HOST": "127.0.0.1", "PORT": closed_port()}
    else:
        away.settings_dict = away.settings_dict | {"NAME": "/nonexistent/aidwallet.sqlite3"}
    connections[DEFAULT_DB_ALIAS] = away
    try:
        yield
    finally:
        away.close()
        connections[DEFAULT_DB_ALIAS] = real
