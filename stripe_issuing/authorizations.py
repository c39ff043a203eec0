"""The card channel's adapter: Stripe's `issuing_authorization.request` in, the engine's
decision out, in the shape Stripe expects. The merchant's place and category come from the card
network's merchant data as Stripe signed it, never from anything the cardholder chooses: when
its acceptor ids are one of our approved merchants', they are that merchant's registered place
and category, and the payment is decided exactly as on the merchant API (zones by commune and
circle, allow and deny lists); else they are what the network says of the shop, and the shop
joins the operator's queue of unknown acceptors."""

import dataclasses
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from typing import Any

import iso18245
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone

from core.prepared import statement_run
from engine.request import AuthorizationRequest, MerchantPlace
from ledger.models import Account
from merchants.acceptors import card_acceptor_merchant, unknown_card_acceptor_count
from merchants.models import CardAcceptor, Merchant
from merchants.payments import merchant_place as registered_place
from stripe_issuing.accounts import card_settlement_account, settlement_code
from wallet.authorize import authorize_card
from wallet.models import Card
from wallet.models.decisions import Decision


@cache
def _mcc_by_stripe_category() -> dict[str, str]:
    return {m.stripe_code: m.mcc for m in iso18245.get_all_mccs() if m.stripe_code}


def merchant_mcc(merchant_data: dict) -> str:
    """Stripe names the category ("grocery_stores_supermarkets"); the rules speak MCCs. Stripe
    also sends the code itself, used when the name is one iso18245 does not know yet."""
    mcc = _mcc_by_stripe_category().get(merchant_data.get("category") or "")
    return mcc or str(merchant_data.get("category_code") or "")


def acceptor_merchant(merchant_data: dict) -> Merchant | None:
    """Our merchant that the network's acceptor ids are, whatever its status."""
    return card_acceptor_merchant(
        network_id=merchant_data.get("network_id"), terminal_id=merchant_data.get("terminal_id")
    )


def merchant_place(merchant_data: dict, merchant: Merchant | None = None) -> MerchantPlace:
    """The shop as the rules see it: our `merchant` (from acceptor_merchant) once approved, as
    on the merchant API, else the card network's data. A pending merchant's acceptor ids are
    its own word until an operator approves it, so they decide nothing yet."""
    if merchant is not None and merchant.status == Merchant.Status.APPROVED:
        return dataclasses.replace(
            registered_place(merchant), network_id=merchant_data.get("network_id") or None
        )
    return MerchantPlace(
        name=merchant_data.get("name") or "",
        mcc=merchant_mcc(merchant_data),
        country=(merchant_data.get("country") or "").upper(),
        network_id=merchant_data.get("network_id") or None,
        postcode=merchant_data.get("postal_code") or None,
    )


def stripe_id(value) -> str | None:
    """An expandable field: the object itself, or its id."""
    if isinstance(value, dict):
        return value.get("id")
    return value


def card_find(value) -> Card | None:
    card_id = stripe_id(value)
    if not card_id:
        return None
    return Card.objects.select_related("wallet").filter(stripe_card_id=card_id).first()


# A converter of a column's value: the function, and whether it is a method of the backend's
# operations (called with the ops of the connection that read the row) or the field's own.
Converter = tuple[Callable[..., Any], bool]


def _columns(connection: BaseDatabaseWrapper, model, alias: str) -> list[tuple[str, list, object]]:
    """Each concrete field of `model` as `alias`.column, with the converters the ORM would apply
    to its value (a decimal on SQLite, a date and time, JSON) and the column they are given.
    The backend's converters are kept unbound: the statement is made once per vendor, and a
    bound method would keep the first connection that made it alive for good."""
    ops = connection.ops
    columns = []
    for field in model._meta.concrete_fields:
        col = field.get_col(alias)
        converters: list[Converter] = [
            (converter.__func__, True)
            if getattr(converter, "__self__", None) is ops
            else (converter, False)
            for converter in ops.get_db_converters(col)
        ]
        converters += [(converter, False) for converter in field.get_db_converters(connection)]
        columns.append((f"{alias}.{ops.quote_name(field.column)}", converters, col))
    return columns


# The rows card_read reads, in the order of its columns.
_READ = ((Card, "c"), (Merchant, "m"), (Account, "s"))

# card_read's statement and columns by database vendor: the same for every connection to it.
_card_read_queries: dict[str, tuple[str, list]] = {}


def _card_read_query(connection: BaseDatabaseWrapper) -> tuple[str, list]:
    """The statement of card_read and the columns of each of its models with their converters,
    made once per vendor (the converters are the backend's)."""
    query = _card_read_queries.get(connection.vendor)
    if query is not None:
        return query
    quote = connection.ops.quote_name
    columns = [_columns(connection, model, alias) for model, alias in _READ]
    acceptor = CardAcceptor._meta
    terminal = quote(acceptor.get_field("terminal_id").column)
    # merchants.acceptors.card_acceptor_merchant's rule: the acceptor of this terminal before the
    # one standing for every terminal of the network id ("" sorts last, descending).
    sql = (
        f"SELECT {', '.join(column for model in columns for column, _, _ in model)} "
        f"FROM {quote(Card._meta.db_table)} c "
        f"LEFT JOIN {quote(Merchant._meta.db_table)} m ON m.{quote(Merchant._meta.pk.column)} = ("
        f"SELECT a.{quote(acceptor.get_field('merchant').column)} "
        f"FROM {quote(acceptor.db_table)} a "
        f"WHERE a.{quote(acceptor.get_field('network_id').column)} = %s "
        f"AND a.{terminal} IN (%s, '') ORDER BY a.{terminal} DESC LIMIT 1) "
        f"LEFT JOIN {quote(Account._meta.db_table)} s "
        f"ON s.{quote(Account._meta.get_field('code').column)} = %s "
        f"WHERE c.{quote(Card._meta.get_field('stripe_card_id').column)} = %s"
    )
    query = _card_read_queries[connection.vendor] = (sql, columns)
    return query


def _instance(connection: BaseDatabaseWrapper, model, columns: list, values):
    """The model instance of one row's values, as the ORM would build it; None for a row the
    LEFT JOIN did not find (its primary key, the first column, is NULL)."""
    if values[0] is None:
        return None
    ops = connection.ops
    converted = []
    for value, (_column, converters, col) in zip(values, columns, strict=True):
        for converter, of_ops in converters:
            value = (
                converter(ops, value, col, connection)
                if of_ops
                else converter(value, col, connection)
            )
        converted.append(value)
    return model.from_db(connection.alias, None, converted)


@dataclasses.dataclass(frozen=True)
class CardRead:
    card: Card
    merchant: Merchant | None  # ours, whose acceptor ids the network's are
    settlement: Account | None  # the currency's card settlement account, once it exists


def card_read(value, merchant_data: dict, currency: str) -> CardRead | None:
    """card_find, acceptor_merchant and the settlement account in one statement, one round trip
    within Stripe's wait; None for an unknown card. The card's wallet is read when used, which
    the engine's fast path does not. Nothing here is cached: the card's status read here decides
    nothing (the engine reads it again under the wallet's lock, which a freeze takes too), and
    the merchant's status is current. The settlement account's balance is not current (it is not
    locked): the holds use only its id and currency."""
    card_id = stripe_id(value)
    if not card_id:
        return None
    # The connection itself, not django.db.connection: that proxy looks it up at each read.
    connection = connections[DEFAULT_DB_ALIAS]
    sql, columns = _card_read_query(connection)
    # Planned once per connection on PostgreSQL (core/prepared.py), not at every webhook.
    row = statement_run(
        sql,
        [
            merchant_data.get("network_id") or None,  # none: no acceptor matches NULL
            merchant_data.get("terminal_id") or "",
            settlement_code(currency),
            card_id,
        ],
    )
    if row is None:
        return None
    instances, start = [], 0
    for (model, _alias), model_columns in zip(_READ, columns, strict=True):
        instances.append(
            _instance(connection, model, model_columns, row[start : start + len(model_columns)])
        )
        start += len(model_columns)
    return CardRead(*instances)


def decision_key(authorization: dict) -> str:
    """`card:<authorization id>` for the first request; an incremental authorization is a new
    request on the same authorization (Stripe keeps the earlier ones in `request_history`),
    decided on its own under `card:<id>:<n>`."""
    earlier = len(authorization.get("request_history") or [])
    key = f"card:{authorization['id']}"
    return f"{key}:{earlier}" if earlier else key


def authorization_decisions(authorization_id: str):
    """Every decision taken on one Stripe authorization: its first request and increments."""
    key = f"card:{authorization_id}"
    # The prefix uses the unique index; the pattern keeps "card:iauth_1" from matching
    # "card:iauth_12".
    return Decision.objects.filter(idempotency_key__startswith=key).filter(
        idempotency_key__regex=rf"^{re.escape(key)}(:[0-9]+)?$"
    )


def answer(*, approved: bool, amount: int | None = None, metadata: dict | None = None) -> dict:
    """Stripe's response body for a real-time authorization."""
    body: dict = {"approved": approved}
    if amount is not None:
        body["amount"] = amount
    if metadata:
        body["metadata"] = metadata
    return body


def authorization_request_handle(*, event: dict) -> tuple[str, dict]:
    """Decide a card payment. Returns (what happened in a few words, Stripe's answer)."""
    authorization = event["data"]["object"]
    pending = authorization.get("pending_request") or {}
    merchant_data = authorization.get("merchant_data") or {}
    currency = (pending.get("currency") or authorization.get("currency") or "").upper()
    read = card_read(authorization.get("card"), merchant_data, currency)
    if read is None:
        return "declined: unknown card", answer(approved=False, metadata={"reason": "unknown_card"})
    card, merchant = read.card, read.merchant
    if merchant is not None and merchant.status == Merchant.Status.SUSPENDED:
        # As on the merchant API: a suspended merchant takes no aid payment. Letting it pass as
        # an unknown shop would also let it escape the deny lists that name it.
        return "declined: merchant suspended", answer(
            approved=False, metadata={"reason": "merchant_not_active"}
        )
    place = merchant_place(merchant_data, merchant)
    created = authorization.get("created")
    request = AuthorizationRequest(
        amount=pending.get("amount", authorization.get("amount")),
        currency=(pending.get("currency") or authorization["currency"]).upper(),
        merchant=place,
        at=datetime.fromtimestamp(created, UTC) if created else timezone.now(),
        channel=Decision.Channel.CARD,
        partial_allowed=bool(pending.get("is_amount_controllable")),
    )
    decision = authorize_card(
        request=request,
        card=card,
        # The money still goes through the card network's settlement: the merchant is paid
        # by its acquirer, not by us.
        credit_account=read.settlement or card_settlement_account(request.currency),
        merchant_id=place.merchant_id,
        idempotency_key=decision_key(authorization),
        merchant_reference=authorization["id"],
        metadata={
            "city": merchant_data.get("city") or "",
            "terminal_id": merchant_data.get("terminal_id") or "",
        },
    )
    metadata = {"decision": decision.reference}
    if decision.status == Decision.Status.DECLINED:
        metadata["reason"] = decision.reason
        return f"declined: {decision.reason}", answer(approved=False, metadata=metadata)
    if decision.status == Decision.Status.PARTIALLY_APPROVED:
        return (
            f"partially approved: {decision.approved_amount} of {decision.amount}",
            answer(approved=True, amount=decision.approved_amount, metadata=metadata),
        )
    return f"approved: {decision.approved_amount}", answer(approved=True, metadata=metadata)


def unknown_acceptor_count(sender, *, decision: Decision, **kwargs) -> None:
    """Put a card authorization at a shop none of our merchants is known by in the operator's
    queue (connected to decision_recorded: once per decision, never on a replay, in its
    transaction)."""
    merchant = decision.request["merchant"]
    if (
        decision.channel != Decision.Channel.CARD
        or decision.merchant_id is not None
        or not merchant.get("network_id")
    ):
        return
    unknown_card_acceptor_count(
        network_id=merchant["network_id"],
        terminal_id=decision.metadata.get("terminal_id", ""),
        currency=decision.currency,
        amount=decision.amount,
        name=merchant.get("name") or "",
        city=decision.metadata.get("city", ""),
        postcode=merchant.get("postcode") or "",
        mcc=merchant.get("mcc") or "",
    )
