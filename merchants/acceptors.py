"""Card acceptors: the identities of our merchants on the card network, how a card payment
finds its merchant, and the operator's queue of card payments at shops we did not know."""

import logging
import re

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.errors import DomainError
from merchants.models import CardAcceptor, Merchant, UnknownCardAcceptor
from merchants.models.acceptors import CARD_ACCEPTOR_TAKEN

logger = logging.getLogger(__name__)

# The formats of merchants.validators: an id outside them can never be a merchant's acceptor.
_NETWORK_ID = re.compile(r"[A-Za-z0-9]{1,35}")
_TERMINAL_ID = re.compile(r"[A-Za-z0-9]{0,16}")


class CardAcceptorTaken(DomainError):
    code = "card_acceptor_taken"
    status = 409
    default_message = CARD_ACCEPTOR_TAKEN


def card_acceptor_add(
    *,
    merchant: Merchant,
    network_id: str,
    terminal_id: str = "",
    how: str,
    by=None,
) -> CardAcceptor:
    """Give a merchant an identity on the card network; the same one again returns it.
    CardAcceptorTaken when it would match a card payment that another merchant's matches."""
    own = CardAcceptor.objects.filter(
        merchant=merchant, network_id=network_id, terminal_id=terminal_id
    ).first()
    if own is not None:
        return own
    overlapping = CardAcceptor.objects.overlapping(network_id=network_id, terminal_id=terminal_id)
    if overlapping.exclude(merchant=merchant).exists():
        raise CardAcceptorTaken(field="card_acceptors")
    acceptor = CardAcceptor(
        merchant=merchant, network_id=network_id, terminal_id=terminal_id, how=how, created_by=by
    )
    acceptor.full_clean()
    try:
        with transaction.atomic():
            acceptor.save()
    except IntegrityError:
        # Another request registered the same identity between our check and our insert.
        raise CardAcceptorTaken(field="card_acceptors") from None
    return acceptor


def card_acceptor_merchant(*, network_id: str | None, terminal_id: str | None) -> Merchant | None:
    """The merchant a card payment is made at: the acceptor with this terminal, else the one
    standing for every terminal of the network id; None when no merchant of ours is known by
    it. Whatever the merchant's status: the caller decides what a pending or suspended one
    means."""
    if not network_id:
        return None
    acceptor = (
        CardAcceptor.objects.filter(network_id=network_id, terminal_id__in=[terminal_id or "", ""])
        .select_related("merchant")
        # A terminal's own acceptor before the one of every terminal ("" sorts first).
        .order_by("-terminal_id")
        .first()
    )
    return acceptor.merchant if acceptor is not None else None


# An UnknownCardAcceptor's unique key (its constraint "unknown_card_acceptor"); what each
# further authorization at it adds to; what it replaces.
_KEY = ("network_id", "terminal_id", "currency")
_ADDED = ("count", "amount")
_REPLACED = ("last_seen", "name", "city", "postcode", "mcc")


def unknown_card_acceptor_count(
    *,
    network_id: str,
    terminal_id: str,
    currency: str,
    amount: int,
    name: str,
    city: str,
    postcode: str,
    mcc: str,
) -> None:
    """Count a card authorization at a shop no merchant of ours is known by, in the caller's
    transaction. The count is one statement, an insert that adds to the row when it exists
    (INSERT ... ON CONFLICT DO UPDATE, which the ORM cannot write with increments): concurrent
    authorizations at one shop are all counted, and their amounts summed exactly."""
    if not (_NETWORK_ID.fullmatch(network_id) and _TERMINAL_ID.fullmatch(terminal_id)):
        logger.warning("card acceptor id not recordable: %r / %r", network_id, terminal_id)
        return
    now = timezone.now()
    row = {
        "network_id": network_id,
        "terminal_id": terminal_id,
        "currency": currency,
        "count": 1,
        "amount": amount,
        "first_seen": now,
        "last_seen": now,
        # What the network says of the shop now: the latest words are the ones to recognise.
        "name": name[:200],
        "city": city[:100],
        "postcode": postcode[:10],
        "mcc": mcc[:4],
    }
    meta = UnknownCardAcceptor._meta
    fields = [meta.get_field(name) for name in row]
    params = [field.get_db_prep_save(row[field.name], connection) for field in fields]
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    columns = {field.name: quote(field.column) for field in fields}
    added = [f"{columns[n]} = {table}.{columns[n]} + EXCLUDED.{columns[n]}" for n in _ADDED]
    replaced = [f"{columns[n]} = EXCLUDED.{columns[n]}" for n in _REPLACED]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(columns.values())}) "
            f"VALUES ({', '.join(['%s'] * len(params))}) "
            f"ON CONFLICT ({', '.join(columns[n] for n in _KEY)}) "
            f"DO UPDATE SET {', '.join(added + replaced)}",
            params,
        )


def unknown_card_acceptor_resolve(
    *, unknown: UnknownCardAcceptor, merchant: Merchant, by, this_terminal_only: bool = False
) -> CardAcceptor:
    """An operator says which merchant an unknown acceptor is: its network id (every terminal,
    or only this one) becomes the merchant's, and the rows it now matches leave the queue."""
    terminal_id = unknown.terminal_id if this_terminal_only else ""
    with transaction.atomic():
        acceptor = card_acceptor_add(
            merchant=merchant,
            network_id=unknown.network_id,
            terminal_id=terminal_id,
            how=CardAcceptor.How.QUEUE,
            by=by,
        )
        matched = UnknownCardAcceptor.objects.filter(network_id=unknown.network_id)
        if terminal_id:
            matched = matched.filter(terminal_id=terminal_id)
        matched.delete()
    return acceptor
