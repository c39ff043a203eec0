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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import psycopg
from django.db import connection
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


@contextmanager
def prepared_cursor(numbered: bool = False) -> Iterator[Any]:
    """A cursor of the default connection, in its current transaction, whose statements are
    prepared (PostgreSQL only). `numbered`: the statements use $1, $2... (in order) instead of
    %s, for a long statement whose text psycopg would parse at each run."""
    with connection.cursor() as django_cursor:
        # Django's own cursor opened the connection (health check included); ours shares it.
        # Any: django-stubs type these wrappers' argument as Django's own CursorWrapper.
        raw: Any
        wrapped: Any
        if connection.queries_logged:
            logged = _LoggedPreparingNumberedCursor if numbered else _LoggedPreparingCursor
            raw = logged(django_cursor.cursor.connection)
            wrapped = connection.make_debug_cursor(raw)
        else:
            plain = _PreparingNumberedCursor if numbered else _PreparingCursor
            raw = plain(django_cursor.cursor.connection)
            wrapped = connection.make_cursor(raw)
        try:
            yield wrapped
        finally:
            raw.close()
