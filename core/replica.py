"""Reads that may come from a PostgreSQL read replica (DATABASE_REPLICA_URL), and the router
that sends them there.

A replica replays the primary's changes a little later, so a read from it may miss the latest
write. Nothing reads from it unless it asks: only code run inside `replica_reads()` does, and
only what may be a moment old goes there (reports, dashboards, exports, an import's check, the
reconciliation). Everything else, the authorization path first, reads the primary. Inside the
block, a read still goes to the primary:

- once the block has written anything (the write is on the primary, and what follows may
  depend on it: it must see it);
- inside a transaction on the primary (what the transaction reads must be what it locks and
  writes).

The block is for work that only reads. A service that writes may look something up before its
first write (an idempotency key, a balance): called inside the block, that lookup could miss
the latest write. Without a replica configured, `replica_reads()` changes nothing."""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"


@dataclass
class _Reads:
    wrote: bool = False


_reads: ContextVar[_Reads | None] = ContextVar("replica_reads", default=None)


@contextmanager
def replica_reads() -> Iterator[None]:
    """Reads inside the block may come from the replica, until the block writes."""
    token = _reads.set(_Reads())
    try:
        yield
    finally:
        _reads.reset(token)


def replica_configured() -> bool:
    return REPLICA in connections.databases


class ReplicaRouter:
    """Every write and every read to the primary, but the reads of a `replica_reads()` block
    (see the module). Always names a database: left to Django, a save of an object read from
    the replica would be sent back to the replica, which refuses writes."""

    def db_for_read(self, model: type, **hints: Any) -> str:
        reads = _reads.get()
        if (
            reads is None
            or reads.wrote
            or not replica_configured()
            or connections[DEFAULT_DB_ALIAS].in_atomic_block
        ):
            return DEFAULT_DB_ALIAS
        return REPLICA

    def db_for_write(self, model: type, **hints: Any) -> str:
        reads = _reads.get()
        if reads is not None:
            reads.wrote = True
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        # The same database, read at two moments.
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        # The replica gets the schema from the primary's WAL.
        return db == DEFAULT_DB_ALIAS
