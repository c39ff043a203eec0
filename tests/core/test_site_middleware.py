"""The merchant API skips the site's middleware (core.middleware.SiteMiddleware): its answers
keep every header they had with it but one word of Vary, and the site's pages keep their
sessions, CSRF cookies and admin headers."""

import json
import re
import uuid

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.utils.module_loading import import_string
from rest_framework.test import APIClient

from merchants.services import api_key_create
from tests.factories import BeneficiaryFactory, make_allocation, make_payment_code, make_program

API = "/api/merchant/v1"


def _headers(response) -> dict[str, str]:
    # X-Request-ID and the docs page's CSP nonce are drawn for each request, and the second list
    # holds the first run's payment too (Content-Length); every other header must be the same,
    # value and all.
    varying = ("X-Request-ID", "Content-Length", "Vary")
    return {
        name: re.sub(r"'nonce-[^']+'", "'nonce'", value)
        for name, value in response.items()
        if name not in varying
    }


def _vary(response) -> list[str]:
    return [word.strip() for word in response["Vary"].split(",")]


def _requests(merchant, secret: str) -> list:
    """Answers of the merchant API: a payment, an error, a list, an unauthenticated call and
    the docs page, each sent in French so that the language's headers show."""
    beneficiary = BeneficiaryFactory()
    make_allocation(program=make_program(), beneficiary=beneficiary, amount=10_000)
    client = APIClient(HTTP_ACCEPT_LANGUAGE="fr")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    payment = {
        "amount": 500,
        "currency": "EUR",
        "payment_code": make_payment_code(beneficiary.wallet),
    }

    def post(body: dict):
        return client.post(
            f"{API}/authorizations",
            json.dumps(body),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        )

    return [
        post(payment),
        post({"amount": 0}),
        client.get(f"{API}/authorizations"),
        APIClient(HTTP_ACCEPT_LANGUAGE="fr").get(f"{API}/authorizations"),
        Client(HTTP_ACCEPT_LANGUAGE="fr").get(f"{API}/docs"),
    ]


@pytest.mark.django_db
def test_the_merchant_api_answers_the_same_headers_without_the_site_middleware(merchant):
    secret = api_key_create(merchant=merchant, name="t", mode="live")[1]
    skipped = _requests(merchant, secret)
    with override_settings(SITE_MIDDLEWARE_SKIPPED_PATHS=[]):
        full = _requests(merchant, secret)
    assert [r.status_code for r in skipped] == [201, 400, 200, 401, 200]
    assert [r.status_code for r in full] == [201, 400, 200, 401, 200]
    for without, with_site in zip(skipped, full, strict=True):
        assert _headers(without) == _headers(with_site)
        # The back office's second-factor middleware read the session of every request, so
        # each answer said it varied with the cookies. An API key's answer does not; the other
        # words of Vary keep their order.
        assert _vary(without) == [word for word in _vary(with_site) if word != "Cookie"]
        assert without.cookies == with_site.cookies == {}
    payment = skipped[0]
    assert payment["Content-Language"] == "fr"
    assert payment["X-Frame-Options"] == "DENY"
    assert payment["X-Content-Type-Options"] == "nosniff"
    assert "Content-Security-Policy" in payment
    assert payment["X-Request-ID"]
    assert payment["Content-Length"] == str(len(payment.content))


@pytest.mark.django_db
def test_the_site_pages_keep_their_middleware():
    response = Client().get("/admin/login/")
    assert response.status_code == 200
    # CSRF's cookie, the session's and the CSRF cookie's Vary, the admin's no-index header.
    assert "csrftoken" in response.cookies
    assert "Cookie" in response["Vary"]
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    # A form posted without its token is refused by CSRF's process_view, which runs inside
    # SiteMiddleware.
    refused = Client(enforce_csrf_checks=True).post("/admin/login/", {"username": "x"})
    assert refused.status_code == 403


def test_site_middleware_holds_what_the_silenced_checks_look_for():
    # admin.E408-E410, axes.W002 and security.W003 are silenced because these run from
    # SITE_MIDDLEWARE: they must be there, sessions before the user, axes last.
    names = [import_string(path) for path in settings.SITE_MIDDLEWARE]
    from axes.middleware import AxesMiddleware
    from django.contrib.auth.middleware import AuthenticationMiddleware
    from django.contrib.messages.middleware import MessageMiddleware
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.middleware.csrf import CsrfViewMiddleware

    assert names.index(SessionMiddleware) < names.index(AuthenticationMiddleware)
    assert MessageMiddleware in names and CsrfViewMiddleware in names
    assert names[-1] is AxesMiddleware
    assert settings.MIDDLEWARE[-1] == "core.middleware.SiteMiddleware"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/hooks/stripe", "/hooks/sms/brevo"])
def test_the_providers_webhooks_answer_the_same_without_the_site_middleware(path):
    # Signed by their sender (Stripe's real-time authorization among them): no session, CSRF
    # cookie or signed-in user, as on the merchant API. An unsigned delivery is refused the
    # same way with or without the site's middleware.
    def post():
        return Client(HTTP_ACCEPT_LANGUAGE="fr").post(path, "{}", content_type="application/json")

    skipped = post()
    with override_settings(SITE_MIDDLEWARE_SKIPPED_PATHS=[]):
        full = post()
    assert "/hooks/" in settings.SITE_MIDDLEWARE_SKIPPED_PATHS
    assert skipped.status_code == full.status_code
    assert 400 <= skipped.status_code < 500
    assert skipped.content == full.content
    assert _headers(skipped) == _headers(full)
    assert skipped.cookies == full.cookies == {}
