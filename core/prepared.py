"""Statements PostgreSQL plans once per connection: the authorization's hot path (issue 19).

PostgreSQL took longer to plan the hot path's large statements than to run them: the read
under the wallet's lock cost its server process 2.2-3.4 ms of CPU, of which 0.3-0.5 ms running
it (EXPLAIN ANALYZE: 10 ms planning, 0.5 ms execution, on a loaded machine). A statement run
through `prepared_cursor()` is prepared on its connection the first time, by name (SQL's
PREPARE), and its plan is reused: PostgreSQL switches to a generic plan after five runs when it
costs no more than the custom ones, which it does for these (BENCHMARKS.md: 0.3 ms of server
CPU per read).

By name, not by psycopg's prepared statements (the extended protocol), so that the payment's
write and its COMMIT go in one message: `EXECUTE name(<values>); COMMIT`, one simple query
(psycopg's ClientCursor) whose values are written as literals (_literals(), public API).
psycopg's pipeline mode sent them in two writes to the socket (it flushes after each command):
PostgreSQL ran the write, then waited for the worker's next write, which on a loaded machine
came after the worker was scheduled again, with the wallet's lock held: a fifth of the lock's
hold (BENCHMARKS.md, issue 19 part 8). psycopg has no public way to queue both and flush once.
The long statement's text goes once per connection (its PREPARE, in the message of its first
run), then the EXECUTE's few hundred bytes.

Nothing else may prepare through psycopg's own on these connections: after a rollback psycopg
sends DEALLOCATE ALL when it has prepared statements of its own, which would drop these too.
The ORM's cursors bind on the client (Django's default) and psycopg never prepares theirs,
whatever its `prepare_threshold`.

The cursor is Django's wrapper around psycopg's: execute wrappers and the query log see these
statements like any other (the log with the statement's own text, its values inlined), so the
tests that count round trips count them."""

import datetime
import decimal
import itertools
import re
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, cast

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections
from psycopg.sql import Literal
from psycopg.types.json import Json, Jsonb
from psycopg.types.numeric import Int2, Int4, Int8

_IDLE = psycopg.pq.TransactionStatus.IDLE

# Statements kept prepared per connection: the read's and lock's few, the write's shapes (a
# payment's holds, a capture's, a webhook's deliveries) a few dozen; past this the least
# recently run is deallocated, as psycopg did its own.
PREPARED_MAX = 100

# The type each value is declared with in the PREPARE, by its Python type: an int is a bigint
# whatever its size (one statement, not one per combination of sizes, and never a smallint
# compared with a bigint column), a str and a None are left to PostgreSQL to infer from where
# they go (as psycopg sent them), the rest as psycopg types them. A value of another type is
# declared "unknown" too: its literal says what it is.
_TYPES: dict[type, str] = {
    int: "int8",
    Int2: "int2",
    Int4: "int4",
    Int8: "int8",
    bool: "bool",
    str: "unknown",
    type(None): "unknown",
    datetime.date: "date",
    Jsonb: "jsonb",
    Json: "json",
    bytes: "bytea",
    decimal.Decimal: "numeric",
    uuid.UUID: "uuid",
}


def _type(value: Any) -> str:
    declared = _TYPES.get(type(value))
    if declared is not None:
        return declared
    if isinstance(value, datetime.datetime):
        return "timestamp" if value.tzinfo is None else "timestamptz"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):  # an IntegerChoices member
        return "int8"
    return "unknown"  # a str's subclass (TextChoices), a list (an array), ...


_PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?(.)", re.DOTALL)


@lru_cache(maxsize=256)
def _numbered(sql: str) -> tuple[str, tuple[str, ...] | None]:
    """`sql` with its %s or %(name)s numbered as PostgreSQL's $1, $2..., and %% as %, with the
    names in the order of their numbers (None for %s): worked out once per statement, where
    psycopg would parse a long text again at each run (its cache stops at 4 kB)."""
    names: dict[str, int] = {}
    numbers = itertools.count(1)

    def placeholder(match: re.Match[str]) -> str:
        name, kind = match[1], match[2]
        if kind == "%" and name is None:
            return "%"
        if kind != "s":
            raise ValueError(f"only %s and %(name)s placeholders: {match[0]!r}")
        if name is None:
            return f"${next(numbers)}"
        if name not in names:
            names[name] = next(numbers)
        return f"${names[name]}"

    numbered = _PLACEHOLDER.sub(placeholder, sql)
    if names and next(numbers) != len(names) + 1:
        raise ValueError("%s and %(name)s placeholders mixed")
    return numbered, tuple(names) if names else None


@dataclass
class _Prepared:
    """The statements prepared on one connection: name by text and declared types, least
    recently run first; and those whose PREPARE went in a message that failed: it may have run
    or not (PREPARE is not undone by a rollback: PostgreSQL keeps what it prepared)."""

    names: OrderedDict[tuple[str, tuple[str, ...]], str] = field(default_factory=OrderedDict)
    unsure: set[str] = field(default_factory=set)
    made: Iterator[int] = field(default_factory=itertools.count)


# A statement and its parameters (psycopg's placeholders: %s or %(name)s).
Statement = tuple[str, Sequence[Any] | Mapping[str, Any]]


class _Cursor:
    """What prepared_cursor() yields: execute() runs a statement prepared by name on the
    connection, execute_in_turn() several in one message; fetchone() and fetchall() read the
    rows of the statement the cursor is on, next_result() moves it to the next one's."""

    def __init__(self, cursor: Any, prepared: _Prepared | None, logged: bool) -> None:
        self._cursor = cursor  # Django's wrapper around a _NamedCursor
        self._prepared = prepared  # None: nothing is prepared (PREPARED_STATEMENTS=false)
        self._logged = logged
        self._skips: list[int] = []  # results to pass over before each next statement's own

    def execute(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = (), *, commit: bool = False
    ) -> None:
        """Run `sql` (psycopg's placeholders, %s or %(name)s) with `params`. `commit`: a
        COMMIT goes in the same message, right after it. An error in either is raised as
        Django's (an IntegrityError for a constraint, deferred or not); PostgreSQL has then
        skipped what followed in the message, and left the transaction aborted (the caller's
        atomic block rolls it back) or, for a failed COMMIT, rolled back."""
        self.execute_in_turn([(sql, params)], commit=commit)

    def execute_in_turn(
        self,
        statements: Sequence[Statement],
        *,
        commit: bool = False,
    ) -> None:
        """Run `statements` one after the other in one message: one round trip. Each takes its
        own snapshot as it starts (READ COMMITTED), so one run after a row lock sees what the
        lock waited for, as it would in a message of its own. The cursor is on the first
        one's rows. A message that opens Django's atomic block's transaction begins it itself
        (_begins_here). Errors as execute()'s; one skips the statements after it."""
        if self._logged:
            self._cursor.cursor.logged_as = list(statements)
        cursor = self._cursor
        pg = cursor.db.connection
        sent: list[str] = []
        starts = []  # where each statement's own result is among the message's results
        made = []  # the names prepared in this message
        prepared = self._prepared
        for sql, params in statements:
            if prepared is None:
                starts.append(len(sent))
                sent.append(cursor.cursor.mogrify(sql, params))
                continue
            numbered, names = _numbered(sql)
            if names is None:
                values = list(params)
            else:
                values = [cast(Mapping[str, Any], params)[name] for name in names]
            types = tuple(map(_type, values))
            # Written before a name is taken for a PREPARE: a value PostgreSQL's text cannot
            # hold (a NUL) is refused here, nothing sent, and raised as Django's DataError, as
            # the server's binding would be; a name taken first would be believed prepared and
            # never was.
            with cursor.db.wrap_database_errors:
                literals = _literals(values, cursor.connection)
            key = (numbered, types)
            name = prepared.names.get(key)
            if name is not None and not self._there(name):
                del prepared.names[key]
                name = None
            if name is None:
                if len(prepared.names) >= PREPARED_MAX:
                    _, old = prepared.names.popitem(last=False)
                    if self._there(old):
                        sent.append(f"DEALLOCATE {old}")
                name = f"aidwallet_{next(prepared.made)}"
                declared = f"({', '.join(types)})" if types else ""
                sent.append(f"PREPARE {name}{declared} AS {numbered}")
                prepared.names[key] = name
                made.append(name)
            else:
                prepared.names.move_to_end(key)
            starts.append(len(sent))
            sent.append(f"EXECUTE {name}({literals})" if values else f"EXECUTE {name}")
        if commit:
            sent.append("COMMIT")
        # Asked last: _there() may have sent a statement, which began the transaction.
        begins = _begins_here(cursor.db, pg)
        if begins:
            sent.insert(0, "BEGIN")
            starts = [start + 1 for start in starts]
            # psycopg begins a transaction with a BEGIN of its own before its first statement,
            # a round trip; this message begins it, and psycopg, put in autocommit, sends none.
            # It stays so until the block's end, where Django sets autocommit anyway: psycopg's
            # commit and rollback go by the server's transaction status, not by autocommit.
            pg.autocommit = True
        try:
            # No parameters: psycopg sends the text as it is (no placeholder to parse).
            cursor.execute("; ".join(sent))
        except Exception as error:
            if begins and pg.info.transaction_status == _IDLE:
                pg.autocommit = False  # nothing began: psycopg begins the next statement's
            if isinstance(error.__cause__, psycopg.errors.InvalidSqlStatementName):
                # Dropped behind our back (DEALLOCATE ALL, DISCARD ALL): this transaction is
                # lost, the next one prepares again.
                cast(_Prepared, prepared).names.clear()
            elif made:  # their PREPAREs may or may not have run
                cast(_Prepared, prepared).unsure.update(made)
            raise
        self._skips = [b - a for a, b in itertools.pairwise(starts)]
        for _ in range(starts[0]):  # BEGIN's, DEALLOCATE's and PREPARE's, before the EXECUTE's
            cursor.nextset()

    def next_result(self) -> None:
        """Move to the next statement's rows (execute_in_turn())."""
        for _ in range(self._skips.pop(0)):
            self._cursor.nextset()

    def _there(self, name: str) -> bool:
        """Whether `name` is prepared on the connection: asked only after a message with its
        PREPARE failed (a round trip then, none otherwise)."""
        prepared = cast(_Prepared, self._prepared)
        if name not in prepared.unsure:
            return True
        self._cursor.execute("SELECT 1 FROM pg_prepared_statements WHERE name = %s", [name])
        prepared.unsure.discard(name)
        return self._cursor.fetchone() is not None

    @property
    def returns_rows(self) -> bool:
        """Whether the statement returns rows (SELECT, RETURNING): read from its result's
        status, not from psycopg's description, which builds an object per column."""
        return bool(self._cursor.cursor.pgresult.status == psycopg.pq.ExecStatus.TUPLES_OK)

    def fetchone(self) -> tuple[Any, ...] | None:
        return cast(tuple[Any, ...] | None, self._cursor.fetchone())

    def fetchall(self) -> list[tuple[Any, ...]]:
        return cast(list[tuple[Any, ...]], self._cursor.fetchall())


def _literals(values: list[Any], connection: psycopg.Connection) -> str:
    """`values` as SQL literals, separated by commas. The frequent ones written here: psycopg's
    quoting of each value, and its parsing of the placeholders (not cached past 50 values), cost
    a 60-value write about 0.2 ms of the worker's processor with the wallet's lock held
    (BENCHMARKS.md, issue 19 part 9); a webhook's writes send dates, psycopg's sized ints and
    choices too, a fifth of its values, each 5-10 times dearer through psycopg's Literal
    (part 10). A str (a choice is one) is quoted as a standard string (only ' doubled), the
    server's setting checked; an int of any class (a sized int, an IntegerChoices member) is its
    digits, the PREPARE declaring its type. One with a NUL, which PostgreSQL's text refuses, and
    any other value are psycopg's (its Literal, as its ClientCursor)."""
    standard = connection.info.parameter_status("standard_conforming_strings") == "on"
    written = []
    for value in values:
        kind = type(value)
        if kind is int:
            written.append(str(value))
        elif kind is str and standard and "\x00" not in value:
            written.append("'" + value.replace("'", "''") + "'")
        elif value is None:
            written.append("NULL")
        elif kind is bool:
            written.append("true" if value else "false")
        elif kind is datetime.date:
            written.append(f"'{value.isoformat()}'::date")
        elif kind is datetime.datetime and value.tzinfo is not None:
            written.append(f"'{value.isoformat()}'::timestamptz")  # the offset keeps the instant
        elif kind is Jsonb and value.dumps is not None and standard:
            text = value.dumps(value.obj)
            text = text.decode() if isinstance(text, bytes) else text
            written.append("'" + text.replace("'", "''") + "'::jsonb")
        elif isinstance(value, int) and not isinstance(value, bool):
            written.append(str(int(value)))
        elif isinstance(value, str) and standard and "\x00" not in value:
            written.append("'" + str.replace(value, "'", "''") + "'")
        else:
            written.append(Literal(value).as_string(connection))
    return ", ".join(written)


def commits_here(db: Any) -> bool:
    """Whether a statement run with execute(commit=True) may commit its transaction itself: the
    transaction is the one Django's outermost atomic block opened (no savepoint or enclosing
    block, as in a test's transaction, whose end is not ours), not marked for rollback. The
    block's exit then finds the transaction committed: Django's COMMIT is a no-op on an idle
    connection (psycopg's), and its on_commit callbacks run as usual. The caller runs nothing
    after the statement in the block (it would run in a transaction of its own)."""
    return (
        db.in_atomic_block
        and db.commit_on_exit
        and len(db.atomic_blocks) == 1
        and not db.savepoint_ids
        and not db.needs_rollback
    )


def _begins_here(db: Any, pg: psycopg.Connection) -> bool:
    """Whether a message may begin the transaction itself: Django's atomic block has opened one
    that psycopg has not begun yet (its BEGIN goes before the block's first statement), and
    psycopg's would be a plain BEGIN (no isolation level, read-only or deferrable setting)."""
    return (
        db.in_atomic_block
        and not pg.autocommit
        and pg.info.transaction_status == _IDLE
        and pg.isolation_level is None
        and pg.read_only is None
        and pg.deferrable is None
    )


def statement_run(
    sql: str, params: Sequence[Any], *, commit: bool = False
) -> tuple[Any, ...] | None:
    """Run one statement on the default connection and return its first row (None for none, or
    for a statement that returns no rows). On PostgreSQL it is prepared_cursor()'s: planned once
    per connection, and `commit` sends the COMMIT in its message when the caller's atomic block
    is the outermost (commits_here), one round trip less, the block's exit then committing
    nothing. On another database Django's cursor runs it and the block commits."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.vendor == "postgresql":
        with prepared_cursor() as cursor:
            cursor.execute(sql, params, commit=commit and commits_here(db))
            return cursor.fetchone() if cursor.returns_rows else None
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        return cast(tuple[Any, ...] | None, cursor.fetchone() if cursor.description else None)


def lock_and_read(
    lock: Statement, read: Statement
) -> tuple[tuple[Any, ...] | None, list[tuple[Any, ...]]]:
    """Run `lock` (a row lock: SELECT ... FOR UPDATE) and `read` in one message, the read
    under the lock (execute_in_turn()), on the default connection (PostgreSQL only); return
    the lock's row (None: nothing locked) and the read's rows."""
    with prepared_cursor() as cursor:
        cursor.execute_in_turn([lock, read])
        locked = cursor.fetchone()
        cursor.next_result()
        return locked, cursor.fetchall()


class _NamedCursor(psycopg.ClientCursor):
    """Values bound on the client, as literals: several statements go in one message."""


class _LoggedNamedCursor(_NamedCursor):
    """Under Django's query log (DEBUG, CaptureQueriesContext): Django logs the SQL psycopg
    last sent (its `_query`), here `EXECUTE name(...)`; the statements' own text with their
    values inlined is logged instead, as for any other statement (those of one message as
    one entry, one round trip)."""

    logged_as: list[tuple[str, Any]] | None = None

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        result = super().execute(query, params, **kwargs)
        if self.logged_as is not None:
            # Another cursor's: mogrify() resets the one it runs on, whose results are unread.
            mogrify = psycopg.ClientCursor(self.connection).mogrify
            text = "; ".join(mogrify(sql, values) for sql, values in self.logged_as)
            self.logged_as = None
            self._query = cast(Any, _Sent(text.encode()))
        return result


@dataclass(frozen=True)
class _Sent:
    query: bytes


# What each psycopg connection has: its cursors, one per kind, made once, not once a statement
# (a psycopg cursor reads its connection's adapters into a map of its own when made, and
# connection.cursor() made one more, unused: three of them a payment cost about as much as
# running its statements' Python, issue 19), and its prepared statements. A connection is used
# by one thread at a time (Django's), and a cursor by one statement at a time here. A new
# connection (a reconnection) starts with none.
_cursors: weakref.WeakKeyDictionary[psycopg.Connection, dict[type, psycopg.Cursor]] = (
    weakref.WeakKeyDictionary()
)
_prepared: weakref.WeakKeyDictionary[psycopg.Connection, _Prepared] = weakref.WeakKeyDictionary()


@contextmanager
def prepared_cursor() -> Iterator[_Cursor]:
    """A cursor of the default connection, in its current transaction, whose statements are
    prepared (PostgreSQL only)."""
    # The wrapper itself, not django.db.connection, whose every attribute read is an asgiref
    # Local lookup. What connection.cursor() does before making its cursor: the health check,
    # the connection opened if need be, the thread's.
    db = connections[DEFAULT_DB_ALIAS]
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    logged = db.queries_logged
    kind = _LoggedNamedCursor if logged else _NamedCursor
    # Any: django-stubs type these wrappers' argument as Django's own CursorWrapper.
    made: Any = _cursors.setdefault(db.connection, {})
    raw = made.get(kind)
    if raw is None or raw.closed:
        raw = made[kind] = kind(db.connection)
    cursor = db.make_debug_cursor(raw) if logged else db.make_cursor(raw)
    # psycopg's prepare_threshold, None when settings say not to prepare (PREPARED_STATEMENTS:
    # behind a pooler in transaction mode, which does not keep a session's PREPAREs).
    prepares = db.connection.prepare_threshold is not None
    named = _prepared.setdefault(db.connection, _Prepared()) if prepares else None
    yield _Cursor(cursor, named, logged)
