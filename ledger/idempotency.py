"""Idempotent writes. A client that retries sends the same key: the first result is returned and
nothing moves again. The same key with other parameters is an error, never a new write.

The key is a unique column on the record the write creates, so the database settles races: of
two concurrent first calls, one commits and the other's insert fails on the unique index, after
which it reads and returns the winner's record."""

import hashlib
import json
from collections.abc import Callable, Mapping
from typing import ClassVar, Protocol, Self, TypeVar

from django.db import IntegrityError, models, transaction

from core.errors import DomainError, IdempotencyConflict


class IdempotentRecord(Protocol):
    """A model whose rows are written under an idempotency key: it has `idempotency_key` and
    `fingerprint` fields and the default `objects` manager."""

    # Only models match this protocol, but a protocol's Self cannot be bound to Model (there is
    # no intersection type), while Manager requires a Model.
    objects: ClassVar[models.Manager[Self]]  # type: ignore[type-var]
    fingerprint: str


M = TypeVar("M", bound=IdempotentRecord)


def fingerprint(params: Mapping[str, object]) -> str:
    """A stable digest of a write's parameters, to tell a replay from a conflicting reuse."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replayed(model: type[M], key: str, digest: str) -> M | None:
    found = model.objects.filter(idempotency_key=key).first()
    if found is not None and found.fingerprint != digest:
        raise IdempotencyConflict(field="idempotency_key")
    return found


def run_idempotent(
    *, model: type[M], key: str, params: Mapping[str, object], create: Callable[[str], M]
) -> M:
    """Return the `model` row written under `key`, calling `create(fingerprint)` (inside its own
    savepoint) only when there is none. `create` must store the key and the fingerprint."""
    digest = fingerprint(params)
    found = _replayed(model, key, digest)
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return create(digest)
    except (IntegrityError, DomainError):
        # A concurrent first call under the same key may have committed while this one waited on
        # a row it had locked (the account it debited, the hold it resolved, the capture it
        # refunded). This call then fails on the key's unique index, or, before reaching it, on
        # the money or the hold that first call used up (InsufficientFunds, HoldAlreadyResolved,
        # ExceedsRefundable). Either way it is a replay: return the first result (or raise
        # IdempotencyConflict), never that error. Found by tests/ledger/test_concurrency.py.
        found = _replayed(model, key, digest)
        if found is None:
            raise
        return found
