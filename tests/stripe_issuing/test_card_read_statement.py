"""card_read's statement is made once per database vendor and keeps no connection alive: each
thread has its own connection, and a cache keyed on the connection grew by one entry per
thread, each holding its connection for good."""

import gc
import weakref

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections

from stripe_issuing import authorizations
from tests.stripe_issuing import stripe_events as se
from tests.stripe_issuing.hooks import beneficiary, card, food_pocket

__all__ = ["beneficiary", "card", "food_pocket"]


@pytest.fixture
def no_statement(monkeypatch):
    monkeypatch.setattr(authorizations, "_card_read_queries", {})


@pytest.mark.usefixtures("no_statement")
def test_one_statement_per_vendor_that_keeps_no_connection_alive():
    other = connections.create_connection(DEFAULT_DB_ALIAS)  # another thread's, say
    made = authorizations._card_read_query(other)
    gone = weakref.ref(other)
    del other
    gc.collect()

    assert gone() is None
    assert authorizations._card_read_query(connection) is made
    assert list(authorizations._card_read_queries) == [connection.vendor]


@pytest.mark.django_db
@pytest.mark.usefixtures("no_statement")
def test_a_statement_made_on_another_connection_reads_the_card_as_the_orm(card):
    authorizations._card_read_query(connections.create_connection(DEFAULT_DB_ALIAS))
    gc.collect()

    read = authorizations.card_read(card.stripe_card_id, se.GROCERY, "EUR")

    assert read is not None and read.merchant is None
    # The date and time is the one a converter makes of SQLite's text, as the ORM's.
    orm = type(card).objects.get(pk=card.pk)
    assert [getattr(read.card, f.attname) for f in card._meta.concrete_fields] == [
        getattr(orm, f.attname) for f in card._meta.concrete_fields
    ]
