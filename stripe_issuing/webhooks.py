"""Stripe's webhook endpoint, in dj-stripe's order: check the signature within a replay window,
store the event, process it, and keep the traceback of a failure. A new event is stored and
processed in one transaction (one commit on the real-time authorization's path); its handler
runs in a savepoint, so that a failure undoes what the handler did and leaves the stored event
with its error, the event row itself holding back any concurrent delivery of the same id.

A body whose signature does not verify is refused (400) and only logged: storing it under the
event id it claims would let a forger take the id of a real event before Stripe sends it.

`issuing_authorization.request` is answered with the decision, in Stripe's shape and with a
`Stripe-Version` header, always with status 200: on any internal error the answer is a decline
(Stripe would otherwise apply its own timeout policy, which may approve). Other events get 200
even when their processing failed: the error is recorded and `manage.py stripe replay_failed`
processes them again once the cause is fixed."""

import json
import logging
import math
import time
import traceback
from functools import cache

import stripe
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DataError, Error, connection, connections, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.health_check import health_check_due
from core.prepared import statement_run
from stripe_issuing.authorizations import answer
from wallet.models.stripe_events import StripeEvent

logger = logging.getLogger(__name__)

TOLERANCE_SECONDS = 300
AUTHORIZATION_REQUEST = "issuing_authorization.request"

# Resolved at dispatch time, so that a handler's module loads only when its event comes.
HANDLERS = {
    AUTHORIZATION_REQUEST: "stripe_issuing.authorizations.authorization_request_handle",
    "issuing_authorization.created": "stripe_issuing.transactions.authorization_event_apply",
    "issuing_authorization.updated": "stripe_issuing.transactions.authorization_event_apply",
    "issuing_transaction.created": "stripe_issuing.transactions.transaction_event_apply",
    "issuing_card.created": "stripe_issuing.cards.card_event_apply",
    "issuing_card.updated": "stripe_issuing.cards.card_event_apply",
}


def _answer(event_type: str, body: dict) -> JsonResponse:
    response = JsonResponse(body)
    if event_type == AUTHORIZATION_REQUEST:
        response["Stripe-Version"] = stripe.api_version
    return response


def _refused(reason: str) -> JsonResponse:
    return JsonResponse({"error": {"code": "invalid_signature", "message": reason}}, status=400)


def _finite(text: str) -> float:
    # JSON has no NaN nor infinity, and neither can be stored in a JSON column.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {text[:20]}")
    return value


def _not_a_number(text: str):
    raise ValueError(f"not a JSON number: {text}")


def _handle(event: StripeEvent) -> tuple[str, dict]:
    """(outcome, answer) of one event. Raises whatever the handler raises."""
    name = HANDLERS.get(event.type)
    if name is None:
        return f"ignored: no handler for {event.type}", {"received": True}
    handler = import_string(name)
    if event.type == AUTHORIZATION_REQUEST:
        return handler(event=event.payload)
    return str(handler(event=event.payload)), {"received": True}


def _processed(*, outcome: str, body: dict, attempts: int) -> dict:
    """The fields of an event whose handler ran to its end."""
    return {
        "result": StripeEvent.Result.PROCESSED,
        "processed_at": timezone.now(),
        "outcome": outcome[:300],
        "response": body,
        "error": "",
        "traceback": "",
        "attempts": attempts + 1,
    }


def _failed(event: StripeEvent, error: Exception) -> dict:
    """The fields of an event whose handler raised `error`; called while it is handled, for its
    traceback."""
    logger.exception("Stripe event %s (%s) failed", event.stripe_id, event.type)
    body = (
        answer(approved=False, metadata={"reason": "internal_error"})
        if event.type == AUTHORIZATION_REQUEST
        else {"received": True}
    )
    # A failed real-time authorization is over: Stripe has our decline. It is recorded as
    # processed with its error, so that no replay can decide it again later.
    failed = event.type != AUTHORIZATION_REQUEST
    return {
        "result": StripeEvent.Result.FAILED if failed else StripeEvent.Result.PROCESSED,
        "processed_at": None if failed else timezone.now(),
        "outcome": "declined: internal error" if not failed else "",
        "response": body,
        "error": f"{type(error).__name__}: {error}"[:2000],
        "traceback": traceback.format_exc(),
        "attempts": event.attempts + 1,
    }


@cache
def _update_sql(columns: tuple[str, ...]) -> str:
    meta = StripeEvent._meta
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(meta.get_field(name).column)} = %s" for name in columns)
    return f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"


def _event_update(pk: int, fields: dict, *, last: bool = False) -> None:
    """StripeEvent.objects.filter(pk=pk).update(**fields), its statement made once: the ORM's
    update compiles it again each time, within Stripe's wait. `last`: the last statement of the
    caller's atomic block, committed with it (core.prepared.statement_run)."""
    meta = StripeEvent._meta
    values = [meta.get_field(name).get_db_prep_save(v, connection) for name, v in fields.items()]
    statement_run(_update_sql(tuple(fields)), [*values, pk], commit=last)


def event_process(event: StripeEvent) -> dict:
    """Process a stored event once and return what to answer Stripe. An event already
    processed returns its first answer and moves nothing."""
    try:
        with transaction.atomic():
            locked = StripeEvent.objects.select_for_update().get(pk=event.pk)
            if locked.result == StripeEvent.Result.PROCESSED:
                return locked.response
            outcome, body = _handle(locked)
            _event_update(
                event.pk,
                _processed(outcome=outcome, body=body, attempts=locked.attempts),
                last=True,
            )
            return body
    except Exception as error:
        fields = _failed(event, error)
        _event_update(event.pk, fields)
        return fields["response"]


class NotStorable(Exception):
    """A signed payload the database refuses (a NUL, a lone surrogate, a field too long)."""


class _ClaimFailed(Exception):
    """The claim, standing for the request's health check, failed: the connection may be one
    the server dropped."""


@cache
def _claim_sql() -> tuple[str, list]:
    """_event_claim's statement and the fields it stores, made once."""
    meta = StripeEvent._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({quote(meta.get_field('stripe_id').column)}) DO NOTHING "
        f"RETURNING {quote(meta.pk.column)}"
    )
    return sql, fields


def _event_claim(data: dict, *, event_id: str, event_type: str, checks: bool) -> StripeEvent | None:
    """Store the event unless its id is stored already, in one statement (INSERT ... ON
    CONFLICT DO NOTHING, which the ORM cannot write with RETURNING): the new row, or None for
    an event delivered before. Until the caller's transaction ends, a concurrent delivery of the
    same id waits on this row's unique key. `checks`: it is the connection's health check, and
    a database error raises _ClaimFailed."""
    event = StripeEvent(
        stripe_id=event_id,
        type=event_type,
        api_version=data.get("api_version") or "",
        livemode=bool(data.get("livemode")),
        payload=data,
    )
    sql, fields = _claim_sql()
    try:
        # pre_save fills received_at as the ORM's insert would (auto_now_add).
        values = [f.get_db_prep_save(f.pre_save(event, add=True), connection) for f in fields]
        row = statement_run(sql, values)
    except (DataError, UnicodeEncodeError) as error:
        raise NotStorable(error) from error
    except Error as error:  # OperationalError, or InterfaceError for a closed socket
        if checks:
            raise _ClaimFailed from error
        raise
    if row is None:
        return None
    event.pk = row[0]
    event._state.adding = False
    return event


def event_receive(data: dict, *, event_id: str, event_type: str) -> tuple[str, dict]:
    """Store a verified event and process it; returns the stored event's type (the first
    delivery's) and what to answer Stripe. Raises
    NotStorable when the database refuses the payload. A new event is stored, handled and
    marked processed (or failed) in one transaction; one delivered before gets event_process:
    its first answer, or a new attempt if it failed."""
    db = connections[DEFAULT_DB_ALIAS]
    if not health_check_due(db):
        return _event_receive(data, event_id=event_id, event_type=event_type, checks=False)
    # The transaction's first statement, the claim, serves as the health check that would
    # otherwise send a `SELECT 1` before it: a round trip per webhook within Stripe's wait (as
    # the merchant API's stored-answer lookup does). A connection the server dropped fails
    # there, before the transaction has done anything: it is closed and the event received
    # once more on a new one, as the check would have done.
    db.health_check_done = True
    try:
        return _event_receive(data, event_id=event_id, event_type=event_type, checks=True)
    except _ClaimFailed:
        db.close()
        return _event_receive(data, event_id=event_id, event_type=event_type, checks=False)


def _event_receive(data: dict, *, event_id: str, event_type: str, checks: bool) -> tuple[str, dict]:
    with transaction.atomic():
        event = _event_claim(data, event_id=event_id, event_type=event_type, checks=checks)
        if event is not None:
            try:
                with transaction.atomic():
                    outcome, body = _handle(event)
            except Exception as error:
                fields = _failed(event, error)
                _event_update(event.pk, fields, last=True)
                return event.type, fields["response"]
            _event_update(
                event.pk, _processed(outcome=outcome, body=body, attempts=event.attempts), last=True
            )
            return event.type, body
    event = StripeEvent.objects.get(stripe_id=event_id)
    return event.type, event_process(event)


def _signature_verify(payload: bytes, header: str, secret: str) -> None:
    """Stripe's check, which refuses a timestamp older than the tolerance, and the same refusal
    for one further than the tolerance in the future: a body signed ahead of time (a clock off,
    or a signature made to be replayed later) is no fresher than a stale one. The header alone:
    stripe.Webhook.construct_event would also parse the body and build a StripeObject of it,
    which the caller parses again and never uses."""
    stripe.WebhookSignature.verify_header(payload, header, secret, TOLERANCE_SECONDS)
    # The signature covers this timestamp: Stripe's own reading of the header, its first "t".
    timestamp = int(
        next(value for key, _, value in (i.partition("=") for i in header.split(",")) if key == "t")
    )
    if timestamp > time.time() + TOLERANCE_SECONDS:
        raise stripe.SignatureVerificationError(
            "Timestamp outside the tolerance zone (in the future)", header, payload
        )


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> JsonResponse:
    payload = request.body
    secret = settings.STRIPE_WEBHOOK_SECRET
    if not secret:
        return _refused("Stripe webhooks are not configured.")
    try:
        _signature_verify(payload, request.headers.get("Stripe-Signature", ""), secret)
        data = json.loads(payload, parse_float=_finite, parse_constant=_not_a_number)
        event_id, event_type = data["id"], data["type"]
    except (
        stripe.SignatureVerificationError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        RecursionError,
    ) as error:
        logger.warning("Stripe webhook refused: %s", error)
        return _refused("The signature or the payload is not valid.")
    try:
        stored_type, body = event_receive(data, event_id=event_id, event_type=event_type)
    except NotStorable as error:
        # Signed, yet not storable (a NUL, a lone surrogate, NaN): no event of Stripe's is so.
        logger.warning("Stripe webhook refused: %s", error)
        return _refused("The signature or the payload is not valid.")
    return _answer(stored_type, body)
