"""HTTP-level idempotency for the merchant API: the first response to a POST carrying an
`Idempotency-Key` is kept and a retry gets it back byte for byte, even if the objects changed
since (a later capture does not change what the authorization call answered). The services
underneath are idempotent by the same key too, so two concurrent first calls still move money
once; whichever response is stored first is the one every later retry gets."""

import functools
import hashlib

from django.db import DEFAULT_DB_ALIAS, Error, connections, router
from django.http import HttpResponse
from django.utils.translation import gettext_lazy as _
from rest_framework.request import Request

from core.errors import DomainError, IdempotencyConflict
from core.health_check import health_check_due
from core.one_statement import OneStatement
from core.prepared import prepared_cursor
from merchants.models import IdempotentResponse, Merchant

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255


class InvalidIdempotencyKey(DomainError):
    code = "invalid_idempotency_key"
    default_message = _("The Idempotency-Key header must be 1 to 255 visible ASCII characters.")


class IdempotencyKeyRequired(DomainError):
    code = "idempotency_key_required"
    default_message = _(
        "This operation requires an Idempotency-Key header: a unique string per operation, "
        "such as a UUID, sent again unchanged on every retry."
    )


def request_key(request: Request) -> str:
    """The request's key. Every POST must carry one: a retry after a lost answer must not
    authorize, capture or refund twice, and without a key the API cannot tell a retry."""
    key = request.headers.get(HEADER)
    if key is None:
        raise IdempotencyKeyRequired(field=HEADER)
    if not (0 < len(key) <= MAX_KEY_LENGTH and key.isascii() and key.isprintable()):
        raise InvalidIdempotencyKey(field=HEADER)
    return key


def request_fingerprint(request: Request) -> str:
    digest = hashlib.sha256()
    for part in (request.method.encode(), request.path.encode(), request.body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def replay(*, merchant: Merchant, key: str, fingerprint: str) -> HttpResponse | None:
    # Before every POST: one statement written once, not a queryset compiled again at each
    # request (the ORM's compilation was a tenth of an authorization's processor time).
    alias = router.db_for_read(IdempotentResponse)
    connection = connections[alias]
    params = [merchant.pk, key]
    if not health_check_due(connection):
        row = _looked_up(alias, params)
    else:
        # The request's first statement: it serves as the health check (CONN_HEALTH_CHECKS)
        # that would otherwise send a `SELECT 1` just before it, a round trip per POST. A
        # connection the server dropped fails here, outside any transaction, on a read: it is
        # closed and the lookup runs once more on a new one, as the check would have done.
        connection.health_check_done = True
        try:
            row = _looked_up(alias, params)
        except Error:  # OperationalError, or InterfaceError for a closed socket
            connection.close()
            row = _looked_up(alias, params)
    if row is None:
        return None
    stored_fingerprint, status_code, body = row
    if stored_fingerprint != fingerprint:
        raise IdempotencyConflict(field=HEADER)
    return _replayed(IdempotentResponse(status_code=status_code, body=body))


def _looked_up(alias: str, params: list) -> tuple | None:
    if alias == DEFAULT_DB_ALIAS and connections[alias].vendor == "postgresql":
        # Planned once per connection (core/prepared.py): the same text at every POST.
        with prepared_cursor() as cursor:
            cursor.execute(_lookup_sql(alias), params)
            return cursor.fetchone()
    with connections[alias].cursor() as cursor:
        cursor.execute(_lookup_sql(alias), params)
        return cursor.fetchone()


@functools.cache
def _lookup_sql(alias: str) -> str:
    """The stored response of (merchant, key): unique, so at most one row."""
    quote = connections[alias].ops.quote_name
    meta = IdempotentResponse._meta
    fingerprint, status_code, body, merchant, key = (
        quote(meta.get_field(name).column)
        for name in ("fingerprint", "status_code", "body", "merchant", "key")
    )
    return (
        f"SELECT {fingerprint}, {status_code}, {body} FROM {quote(meta.db_table)} "
        f"WHERE {merchant} = %s AND {key} = %s"
    )


# An application is sent before its shop has a merchant account or a key: its first answer is
# kept with the merchant it created, under this prefix, and found again by key and fingerprint
# (the whole body, IBAN included), so only a client that sends the same application gets it.
APPLICATION_PREFIX = "application:"


def application_replay(*, key: str, fingerprint: str) -> HttpResponse | None:
    stored = IdempotentResponse.objects.filter(
        key=APPLICATION_PREFIX + key, fingerprint=fingerprint
    ).first()
    return _replayed(stored) if stored is not None else None


def _replayed(stored: IdempotentResponse) -> HttpResponse:
    response = HttpResponse(
        bytes(stored.body), status=stored.status_code, content_type="application/json"
    )
    response["Idempotent-Replayed"] = "true"
    return response


def remember(
    *, merchant: Merchant, key: str, fingerprint: str, response, writes: OneStatement | None = None
) -> None:
    stored = IdempotentResponse(
        merchant=merchant,
        key=key,
        fingerprint=fingerprint,
        status_code=response.status_code,
        body=response.content,
    )
    if writes is not None:
        # In the payment's one statement: a concurrent first call that stored its response
        # first makes it fail, and the view answers with that response.
        writes.insert(stored)
        return
    # ON CONFLICT DO NOTHING: if a concurrent first call stored its response first, retries get
    # that one. One statement, no savepoint.
    IdempotentResponse.objects.bulk_create([stored], ignore_conflicts=True)
