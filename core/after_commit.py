"""What rows hand over to the workers once their transaction commits, handed over in batches.

A service that hands each row it writes to a worker after commit (the notifications outbox: a
task that sends the message) would publish one task per row. Inside `together()`, the rows that
the block's transactions commit, in one transaction or in one each, are gathered and handed
over `size` at a time, as soon as that many are committed, and the rest when the block ends:
a loop over many people (a campaign's grants, the expiry reminders, the payments' drain)
publishes a task per batch, not per message. The loop need not know what its writes hand over:
a lower floor (funders) opens the block around its loop, and a higher one (notifications),
whose receivers write the rows, hands them over into it.

A row is gathered on the commit of the transaction or savepoint that wrote it: one rolled back
hands nothing over. Blocks nest: an inner block is part of the outer one, which hands over."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import transaction

HandOver = Callable[[list[int]], None]

# The open block's rows, committed and not yet handed over, by the function they go to.
_block: ContextVar[dict[HandOver, list[int]] | None] = ContextVar("after_commit", default=None)


@contextmanager
def together() -> Iterator[None]:
    """Hand over the rows committed in the block in batches (see the module)."""
    if _block.get() is not None:
        yield
        return
    gathered: dict[HandOver, list[int]] = {}
    token = _block.set(gathered)
    try:
        yield
    finally:
        _block.reset(token)
        # Registered after the callbacks that gather, so run after them; outside a
        # transaction, at once (what an exception left committed is handed over too); in a
        # transaction that rolls back, dropped with the rows. robust: the rows' transactions
        # have committed; a broker that is down must not turn them into an error (the
        # notifications' sweep queues a row whose task was lost).
        transaction.on_commit(lambda: _hand_over_rest(gathered), robust=True)


def hand_over(row: int, *, to: HandOver, size: int) -> None:
    """Have `to` given the id `row` once the current transaction commits: in the open block's
    batches of `size`, or alone outside a block."""
    gathered = _block.get()
    if gathered is None:
        transaction.on_commit(lambda: to([row]), robust=True)
        return

    def gather() -> None:
        rows = gathered.setdefault(to, [])
        rows.append(row)
        if len(rows) >= size:
            batch = rows[:]
            rows.clear()
            to(batch)

    transaction.on_commit(gather, robust=True)


def _hand_over_rest(gathered: dict[HandOver, list[int]]) -> None:
    for to, rows in gathered.items():
        if rows:
            to(rows)
