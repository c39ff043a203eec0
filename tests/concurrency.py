"""Real concurrent clients for the PostgreSQL tests: each call runs in its own thread, with its
own connection and transaction, and all are released at once on a barrier."""

import threading
from collections.abc import Callable

from django.db import connection


def run_together(calls: list[Callable[[], object]]) -> list[object]:
    """Run each call in its own thread and connection, all released at once; return what each
    returned or raised, in the order of `calls`."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[object] = [None] * len(calls)

    def worker(index: int, call: Callable[[], object]) -> None:
        try:
            connection.ensure_connection()  # connect before the barrier, so the calls overlap
            barrier.wait(timeout=30)
            outcomes[index] = call()
        except Exception as error:  # every outcome is inspected by the test
            outcomes[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck (deadlock?)"
    return outcomes


def swept_after(read: Callable[..., object], account_id: int) -> tuple[Callable[..., object], list]:
    """`read` (a hot path's read under the wallet's lock) wrapped so that, the first time it
    returns, another transaction takes every cent of the account `account_id` and commits, as a
    sweep does (it locks the account, not the wallet). Returns the wrapper and the list of the
    sweep's updated row counts."""
    from django.db.models import F

    from ledger.models import Account

    swept: list[int] = []

    def sweep() -> None:
        swept.append(Account.objects.filter(pk=account_id).update(pending=F("balance")))
        connection.close()

    def read_then_swept(**kwargs):
        found = read(**kwargs)
        if not swept:
            thread = threading.Thread(target=sweep)
            thread.start()
            thread.join()
        return found

    return read_then_swept, swept
