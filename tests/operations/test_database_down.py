"""While the database cannot be reached, every request is answered 503 with Retry-After, in the
caller's shape and language, never 500; /readyz says not ready; nothing is written."""

import logging

import pytest
from django.db import IntegrityError
from django.test import Client

from tests.operations.outage import database_unreachable
from wallet.models.decisions import Decision

API_BODY = {"amount": 1_000, "currency": "EUR", "payment_code": "123456789012"}


@pytest.fixture(autouse=True)
def _retry_after(settings):
    settings.DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS = 7


def _authorize(client, language: str):
    return client.post(
        "/api/merchant/v1/authorizations",
        API_BODY,
        content_type="application/json",
        headers={
            "Authorization": "Bearer mk_test_whatever",
            "Idempotency-Key": "outage-1",
            "Accept-Language": language,
        },
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("en", "The service is temporarily unavailable. Please retry in a moment."),
        ("fr", "Le service est momentanément indisponible. Réessayez dans un instant."),
    ],
)
def test_the_api_answers_503_to_retry_in_the_callers_language(client, language, message):
    with database_unreachable():
        response = _authorize(client, language)

    assert response.status_code == 503
    assert response["Retry-After"] == "7"
    assert response.json() == {
        "error": {"code": "service_unavailable", "message": message, "field": None}
    }
    assert not Decision.objects.exists()


@pytest.mark.django_db
def test_the_app_api_answers_503_in_the_same_shape(client):
    with database_unreachable():
        response = client.get("/api/app/v1/me", headers={"Authorization": "Bearer whatever"})

    assert response.status_code == 503
    assert response["Retry-After"] == "7"
    assert response.json()["error"]["code"] == "service_unavailable"


@pytest.mark.django_db
def test_a_page_answers_a_plain_503_page(client):
    # The invitation page looks its token up: the view itself meets the database away.
    with database_unreachable():
        response = client.get("/shop/join/sometoken/", headers={"Accept-Language": "fr"})

    assert response.status_code == 503
    assert response["Retry-After"] == "7"
    assert response["Content-Type"].startswith("text/html")
    page = response.content.decode()
    assert '<html lang="fr">' in page
    assert "Service momentanément indisponible" in page


@pytest.mark.django_db
def test_each_request_during_an_outage_is_logged_in_one_line_without_a_traceback(client, caplog):
    with database_unreachable(), caplog.at_level(logging.INFO):
        client.get("/shop/join/sometoken/")

    assert [r.getMessage()[:22] for r in caplog.records if r.name == "core.middleware"] == [
        "database unavailable: "
    ]
    assert not [r for r in caplog.records if r.exc_info], "a traceback per request"


@pytest.mark.django_db
def test_a_middleware_meeting_the_database_away_answers_503_too(operator):
    # A signed-in session is read by the second factor's middleware, before any view: the
    # exception reaches handler500, which tells it from a bug.
    client = Client(raise_request_exception=False)
    client.force_login(operator)

    with database_unreachable():
        response = client.get("/admin/", headers={"Accept-Language": "en"})

    assert response.status_code == 503
    assert response["Retry-After"] == "7"
    assert "Service temporarily unavailable" in response.content.decode()


@pytest.mark.django_db
def test_a_bug_is_still_a_500(monkeypatch):
    def broken(token):
        raise IntegrityError("a bug, not an outage")

    monkeypatch.setattr("shop.views.onboarding.invitation_find", broken)
    client = Client(raise_request_exception=False)

    response = client.get("/shop/join/sometoken/")

    assert response.status_code == 500
    assert "Retry-After" not in response


@pytest.mark.django_db
def test_readyz_says_not_ready_and_healthz_alive(client):
    with database_unreachable():
        ready = client.get("/readyz")
        alive = client.get("/healthz")

    assert ready.status_code == 503
    assert ready.json()["checks"]["database"] == {"status": "fail", "error": "unavailable"}
    assert "database" in ready.json()["failing"]
    assert alive.status_code == 200
