"""The SQL statements of one real-time authorization, pinned on PostgreSQL: each is a round trip
within Stripe's wait, and the webhook's own share (outside the engine) was cut from 12 with two
commits to 9 with one; the engine's, from 11 to 4 on PostgreSQL's fast path (wallet.authorize.
authorize_card)."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from ledger.models import Account, Transfer
from stripe_issuing.authorizations import card_read
from tests.connections import a_new_request, drop_the_connection
from tests.markers import ON_POSTGRESQL
from tests.stripe_issuing import stripe_events as se
from tests.stripe_issuing.hooks import balances, beneficiary, card, food_pocket, webhook_secret
from wallet.models.stripe_events import StripeEvent

__all__ = ["beneficiary", "card", "food_pocket", "webhook_secret"]

pytestmark = [
    # Real transactions: BEGIN and COMMIT are counted as in production, not savepoints of the
    # test's own transaction.
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("webhook_secret"),
]

# BEGIN, the event stored (INSERT ... ON CONFLICT DO NOTHING), SAVEPOINT of the handler, the
# card with its acceptor's merchant and the settlement account in one read, the engine's fast
# path
# (the wallet's lock and one read under it in one message, SAVEPOINT, the unknown acceptor
# counted in one upsert, one write, RELEASE), RELEASE, the event marked processed, COMMIT (sent
# in the update's message; Django logs its own COMMIT, which then sends nothing). Django logs
# BEGIN when its block opens; psycopg sends it in the claim's message (core/prepared.py).
STATEMENTS = 12

postgresql_statements = pytest.mark.skipif(
    not ON_POSTGRESQL, reason="PostgreSQL's statements are counted (set DATABASE_URL)"
)


@postgresql_statements
def test_a_new_authorization_takes_12_statements_and_one_commit(card, food_pocket):
    client = Client()
    # The first request loads what later ones find ready: the category table, the settlement
    # account (created by the first authorization in its currency).
    se.post(client, authorization_of(card, 100))
    body = authorization_of(card, 2_500)

    with CaptureQueriesContext(connection) as queries:
        response = se.post(client, body)

    assert response.json()["approved"] is True
    assert balances(food_pocket) == (10_000, 2_600)
    statements = [query["sql"].split(None, 1)[0].upper() for query in queries]
    listing = "\n".join(query["sql"][:120] for query in queries)
    assert len(statements) == STATEMENTS, listing
    assert statements.count("COMMIT") == 1, listing
    assert StripeEvent.objects.get(stripe_id=body["id"]).result == "processed"


@postgresql_statements
def test_a_redelivery_decides_nothing_and_answers_the_same(card, food_pocket):
    client = Client()
    body = se.event(
        "issuing_authorization.request", se.authorization(card=card.stripe_card_id, amount=2_500)
    )
    first = se.post(client, body).json()

    with CaptureQueriesContext(connection) as queries:
        again = se.post(client, body).json()

    assert again == first
    statements = [query["sql"].split(None, 1)[0].upper() for query in queries]
    # The claim finds the id taken; the stored answer is read under the event's lock.
    assert "SAVEPOINT" not in statements
    assert balances(food_pocket) == (10_000, 2_500)


def test_the_settlement_account_is_created_by_the_first_authorization_then_read_with_the_card(
    card, food_pocket
):
    client = Client()
    assert not Account.objects.filter(code="card-settlement:EUR").exists()

    first = se.event(
        "issuing_authorization.request", se.authorization(card=card.stripe_card_id, amount=100)
    )
    assert se.post(client, first).json()["approved"] is True
    settlement = Account.objects.get(code="card-settlement:EUR")
    read = card_read(card.stripe_card_id, {}, "EUR")
    again = se.event(
        "issuing_authorization.request", se.authorization(card=card.stripe_card_id, amount=200)
    )
    with CaptureQueriesContext(connection) as queries:
        assert se.post(client, again).json()["approved"] is True

    assert read.card.pk == card.pk and read.merchant is None
    assert (read.settlement.pk, read.settlement.currency) == (settlement.pk, "EUR")
    assert card_read(card.stripe_card_id, {}, "USD").settlement is None
    assert card_read("ic_unknown", {}, "EUR") is None
    assert Account.objects.filter(kind=Account.Kind.CARD_SETTLEMENT).count() == 1
    # Looked up once, in the card's statement, and never created again.
    (looked_up,) = [q["sql"] for q in queries if "card-settlement:EUR" in q["sql"]]
    assert looked_up.startswith("SELECT") and card.stripe_card_id in looked_up
    # Both holds name it as their credit side: what the network will settle.
    assert sorted(
        Transfer.objects.filter(credit_account=settlement).values_list("amount", flat=True)
    ) == [100, 200]


@postgresql_statements
def test_the_event_marked_processed_and_the_commit_go_in_one_message(card, food_pocket):
    client = Client()
    se.post(client, authorization_of(card, 100))
    body = authorization_of(card, 2_500)
    sent = []

    def record(execute, sql, params, many, context):
        sent.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        response = se.post(client, body)

    assert response.json()["approved"] is True
    # What went to the server, message by message (BEGIN aside, psycopg's own): the last is
    # the event's update by name, with the COMMIT; Django's COMMIT after it sends nothing.
    assert sent[-1].startswith("EXECUTE ") and sent[-1].endswith("; COMMIT"), sent[-1]
    assert "'processed'" in sent[-1]
    assert not any(sql.strip().upper() == "COMMIT" for sql in sent)
    assert StripeEvent.objects.get(stripe_id=body["id"]).result == "processed"


def authorization_of(card, amount: int) -> dict:
    return se.event(
        "issuing_authorization.request", se.authorization(card=card.stripe_card_id, amount=amount)
    )


@postgresql_statements
def test_no_select_1_before_the_claim(card, food_pocket, monkeypatch):
    client = Client()
    assert se.post(client, authorization_of(card, 100)).json()["approved"] is True
    checks = []
    usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or usable())
    a_new_request()

    response = se.post(client, authorization_of(card, 2_500))

    assert response.json()["approved"] is True
    assert checks == []
    assert connection.health_check_done


@postgresql_statements
def test_a_connection_the_server_dropped_is_replaced_and_the_payment_decided(card, food_pocket):
    client = Client()
    assert se.post(client, authorization_of(card, 100)).json()["approved"] is True
    dropped = drop_the_connection()
    body = authorization_of(card, 2_500)

    response = se.post(client, body)

    assert response.status_code == 200
    assert response.json()["approved"] is True
    assert connection.connection.info.backend_pid != dropped
    assert StripeEvent.objects.get(stripe_id=body["id"]).result == "processed"
    assert balances(food_pocket) == (10_000, 2_600)
