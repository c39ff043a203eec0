"""core.middleware.ContentSecurityPolicy: the header django-csp's middleware writes, the same
text on every answer (a JSON answer of the merchant API, a page with a nonce, the API docs'
widened policy, a 404), built once per process for the answers that neither draw a nonce nor
change the policy."""

import json
import re
import uuid

import pytest
from csp import middleware as csp_middleware
from django.conf import settings
from django.test import Client, override_settings
from rest_framework.test import APIClient

from merchants.services import api_key_create
from tests.factories import BeneficiaryFactory, make_allocation, make_payment_code, make_program

API = "/api/merchant/v1"
HEADERS = ("Content-Security-Policy", "Content-Security-Policy-Report-Only")


def _answers(merchant) -> list:
    secret = api_key_create(merchant=merchant, name="t", mode="live")[1]
    beneficiary = BeneficiaryFactory()
    make_allocation(program=make_program(), beneficiary=beneficiary, amount=10_000)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    body = {"amount": 500, "currency": "EUR", "payment_code": make_payment_code(beneficiary.wallet)}
    return [
        api.post(
            f"{API}/authorizations",
            json.dumps(body),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4()),
        ),
        api.get(f"{API}/authorizations"),
        Client().get(f"{API}/docs"),  # csp_update: the docs' widened policy
        Client().get("/admin/login/"),
        Client().get("/nowhere"),
    ]


def _policies(answers) -> list[dict[str, str | None]]:
    # A nonce is drawn for each answer that uses one: the rest of the text must be the same.
    return [
        {name: re.sub(r"'nonce-[^']+'", "'nonce'", answer.get(name) or "") for name in HEADERS}
        for answer in answers
    ]


def _with_django_csp():
    middleware = [
        "csp.middleware.CSPMiddleware" if path == "core.middleware.ContentSecurityPolicy" else path
        for path in settings.MIDDLEWARE
    ]
    return override_settings(MIDDLEWARE=middleware)


@pytest.mark.django_db
@pytest.mark.parametrize("report_only", [False, True])
def test_every_answer_carries_the_policy_django_csp_writes(merchant, report_only):
    extra = {}
    if report_only:
        extra["CONTENT_SECURITY_POLICY_REPORT_ONLY"] = {
            "DIRECTIVES": {"default-src": ["'self'"], "report-uri": "/csp-report"}
        }
    with override_settings(**extra):
        ours = _answers(merchant)
        with _with_django_csp():
            theirs = _answers(merchant)
    statuses = [201, 200, 200, 200, 404]
    assert [a.status_code for a in ours] == [a.status_code for a in theirs] == statuses
    assert _policies(ours) == _policies(theirs)
    assert all(policy["Content-Security-Policy"] for policy in _policies(ours))
    report_only_headers = [p["Content-Security-Policy-Report-Only"] for p in _policies(ours)]
    assert all(bool(header) is report_only for header in report_only_headers)
    # The docs page's policy is its own (the widened one), not the settings'.
    assert ours[2]["Content-Security-Policy"] != ours[0]["Content-Security-Policy"]


@pytest.mark.django_db
def test_an_api_answer_builds_no_policy(merchant, monkeypatch):
    built = []
    original = csp_middleware.build_policy

    def counted(*args, **kwargs):
        built.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(csp_middleware, "build_policy", counted)
    secret = api_key_create(merchant=merchant, name="t", mode="live")[1]
    answer = Client().get(f"{API}/authorizations", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert answer.status_code == 200
    assert answer["Content-Security-Policy"]
    # django-csp's middleware builds two per answer (the policy, the report-only one).
    assert built == []
