"""Statements PostgreSQL plans once per connection: the authorization's hot path (issue 19).

PostgreSQL took longer to plan the hot path's large statements than to run them: the read
under the wallet's lock cost its server process 2.2-3.4 ms of CPU, of which 0.3-0.5 ms running
it (EXPLAIN ANALYZE: 10 ms planning, 0.5 ms execution, on a loaded machine). A statement run
through `prepared_cursor()` is prepared on its connection the first time (settings set psycopg's
`prepare_threshold` to 0; psycopg keeps the 100 most recently used per connection) and its plan
is reused: PostgreSQL switches to a generic plan after five runs when it costs no more than the
custom ones, which it does for these (BENCHMARKS.md: 0.3 ms of server CPU per read).

Only these statements are bound on the server: the ORM keeps Django's client-side binding (its
default), whose cursors never prepare, so the setting changes nothing else.

The cursor is Django's wrapper around psycopg's: execute wrappers and the query log see these
statements like any other, so the tests that count round trips count them."""

import re
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from psycopg.types.numeric import Int8Dumper


class _PreparingCursor(psycopg.Cursor):
    def __init__(self, connection: psycopg.Connection) -> None:
        super().__init__(connection)
        # Every Python int as a bigint: psycopg types an int by its size (smallint, integer,
        # bigint), which would prepare one statement per combination of sizes met, and bind a
        # parameter as a smallint where a bigint column is compared or updated.
        self.adapters.register_dumper(int, Int8Dumper)


class _PreparingNumberedCursor(psycopg.RawCursor):
    """For a statement written with PostgreSQL's own placeholders ($1, $2...), sent as it is.
    psycopg turns %s into them by parsing the text, and caches that only for statements under
    4 KB and 50 parameters: the authorization's one write (core/one_statement.py) is longer,
    and was parsed again at each payment, about 0.3 ms of its process' CPU (issue 19)."""

    def __init__(self, connection: psycopg.Connection) -> None:
        super().__init__(connection)
        self.adapters.register_dumper(int, Int8Dumper)


class _LoggedPreparingCursor(_PreparingCursor):
    """Under Django's query log (DEBUG, CaptureQueriesContext): Django logs the SQL psycopg
    last sent (its `_query`), which psycopg leaves unset when it runs a prepared statement; the
    statement with its parameters inlined is logged instead."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        result = super().execute(query, params, **kwargs)
        text = psycopg.ClientCursor(self.connection).mogrify(query, params)
        self._query = cast(Any, _Sent(text.encode()))
        return result


class _LoggedPreparingNumberedCursor(_PreparingNumberedCursor):
    """_LoggedPreparingCursor's log for a statement with $n placeholders: the same text as if
    it had been written with %s (they are numbered in order, core/one_statement.py)."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        result = super().execute(query, params, **kwargs)
        text = psycopg.ClientCursor(self.connection).mogrify(
            _NUMBERED.sub("%s", query.replace("%", "%%")), params
        )
        self._query = cast(Any, _Sent(text.encode()))
        return result


_NUMBERED = re.compile(r"\$\d+")


@dataclass(frozen=True)
class _Sent:
    query: bytes


# The cursors of each psycopg connection, one per kind: made once, not once a statement. A
# psycopg cursor reads its connection's adapters into a map of its own when made (the bigint
# dumper registered on it again), and connection.cursor() made one more, unused: three of them
# a payment cost about as much as running its statements' Python (issue 19). A connection is
# used by one thread at a time (Django's), and a cursor by one statement at a time here.
_cursors: weakref.WeakKeyDictionary[psycopg.Connection, dict[type, psycopg.Cursor]] = (
    weakref.WeakKeyDictionary()
)


@contextmanager
def prepared_cursor(numbered: bool = False) -> Iterator[Any]:
    """A cursor of the default connection, in its current transaction, whose statements are
    prepared (PostgreSQL only). `numbered`: the statements use $1, $2... (in order) instead of
    %s, for a long statement whose text psycopg would parse at each run."""
    # The wrapper itself, not django.db.connection, whose every attribute read is an asgiref
    # Local lookup. What connection.cursor() does before making its cursor: the health check,
    # the connection opened if need be, the thread's.
    db = connections[DEFAULT_DB_ALIAS]
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    logged = db.queries_logged
    if numbered:
        kind: type = _LoggedPreparingNumberedCursor if logged else _PreparingNumberedCursor
    else:
        kind = _LoggedPreparingCursor if logged else _PreparingCursor
    # Any: django-stubs type these wrappers' argument as Django's own CursorWrapper.
    made: Any = _cursors.setdefault(db.connection, {})
    raw = made.get(kind)
    if raw is None or raw.closed:
        raw = made[kind] = kind(db.connection)
    yield db.make_debug_cursor(raw) if logged else db.make_cursor(raw)
