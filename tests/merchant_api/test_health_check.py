"""The stored answer's lookup, every POST's first statement, is also the request's check that
its persistent connection still works (CONN_HEALTH_CHECKS): no `SELECT 1` round trip before
it, and a connection the server dropped is still replaced before the payment."""

import uuid

import pytest
from django.db import connection, transaction

from merchant_api import idempotency
from tests.connections import a_new_request, drop_the_connection
from wallet.models import Decision

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="SQLite has no server to drop a connection"
    ),
]


def pay(api, code):
    body = {"amount": 100, "currency": "EUR", "payment_code": code}
    return api.send("/authorizations", body, key=str(uuid.uuid4()))


def test_no_select_1_before_the_lookup(api, payment_code, monkeypatch):
    assert pay(api, payment_code()).status_code == 201  # the connection is open from here on
    checks = []
    usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or usable())
    code = payment_code()
    a_new_request()

    response = pay(api, code)

    assert response.status_code == 201, response.content
    assert checks == []
    assert connection.health_check_done


def test_a_connection_the_server_dropped_is_replaced_and_the_payment_made(api, payment_code):
    assert pay(api, payment_code()).status_code == 201
    code = payment_code()
    dropped = drop_the_connection()

    response = pay(api, code)

    assert response.status_code == 201, response.content
    assert response.json()["status"] == "approved"
    assert connection.connection.info.backend_pid != dropped
    assert Decision.objects.filter(reference=response.json()["id"]).exists()


def test_inside_a_transaction_the_check_runs_as_before(api, payment_code, monkeypatch):
    """A lookup inside a transaction (a retry's, after the one statement's conflict) cannot be
    tried again on a new connection: the usual check stays, and no error is hidden."""
    assert pay(api, payment_code()).status_code == 201
    checks = []
    usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or usable())
    a_new_request()

    with transaction.atomic():
        assert idempotency.replay(merchant=api.merchant, key="absent", fingerprint="") is None

    assert checks == [1]
