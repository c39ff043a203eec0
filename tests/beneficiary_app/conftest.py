"""Two beneficiaries, each with a wallet, and API clients signed in to them: most app API tests
check that one beneficiary never reaches the other's pockets, cards or payments."""

import json
import logging
import re

import pytest
from rest_framework.test import APIClient

from beneficiary_app.services import app_token_create
from tests.factories import BeneficiaryFactory, make_allocation, make_merchant, make_program
from wallet.models import Card, Notification

API = "/api/app/v1"
FOOD_IN_ISERE = {"categories": {"allow_groups": ["food"]}, "zone": {"departements": ["38"]}}


class AppClient(APIClient):
    """An API client of the app, speaking JSON, with the token of one wallet (an aidant's when
    `aidant` is given), in French unless told otherwise."""

    def __init__(self, wallet=None, *, aidant=None, language: str = "fr", **kwargs):
        super().__init__(HTTP_ACCEPT_LANGUAGE=language, **kwargs)
        if wallet is not None:
            self.token, secret = app_token_create(wallet=wallet, aidant=aidant)
            self.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

    def send(self, path: str, body: dict | None = None, *, method: str = "post", **extra):
        return getattr(self, method)(
            f"{API}{path}", data=json.dumps(body or {}), content_type="application/json", **extra
        )

    def read(self, path: str, **params):
        return self.get(f"{API}{path}", params)


def error_code(response) -> str:
    return response.json()["error"]["code"]


def last_code(contact: str) -> str:
    """The sign-in code sent to `contact`, as the person reads it in the message."""
    message = Notification.objects.filter(
        kind=Notification.Kind.SIGN_IN_CODE, recipient=contact
    ).latest("pk")
    return re.search(r"\b(\d{6})\b", message.body)[1]


@pytest.fixture(autouse=True)
def eager_tasks(settings):
    """Celery tasks run in the test's process: asking for a sign-in code queues the lookup and
    the sending (beneficiary_app.tasks), which the tests then read. Their "succeeded" lines are
    left out of the log: a random task id's digits can pass for a card number in the secrets
    scan (tests/security), once in a few hundred ids; failures are still logged."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True
    trace = logging.getLogger("celery.app.trace")
    level = trace.level
    trace.setLevel(logging.WARNING)
    yield
    trace.setLevel(level)


@pytest.fixture
def beneficiary(db):
    return BeneficiaryFactory(
        first_name="Marie", email="marie.dupont@example.org", phone="+33612345678"
    )


@pytest.fixture
def other_beneficiary(db):
    return BeneficiaryFactory(first_name="Paul", email="paul@example.org", phone="+33698765432")


@pytest.fixture
def api(beneficiary):
    return AppClient(beneficiary.wallet)


@pytest.fixture
def api_en(beneficiary):
    return AppClient(beneficiary.wallet, language="en")


@pytest.fixture
def anonymous(db):
    return AppClient()


@pytest.fixture
def food_pocket(beneficiary):
    program = make_program(rules=FOOD_IN_ISERE)
    return make_allocation(program=program, beneficiary=beneficiary, amount=10_000).pocket


@pytest.fixture
def other_pocket(other_beneficiary):
    return make_allocation(beneficiary=other_beneficiary, amount=5_000).pocket


@pytest.fixture
def card(beneficiary):
    return Card.objects.create(
        wallet=beneficiary.wallet, kind="physical", status="active", last4="4242"
    )


@pytest.fixture
def other_card(other_beneficiary):
    return Card.objects.create(
        wallet=other_beneficiary.wallet, kind="virtual", status="active", last4="1111"
    )


@pytest.fixture
def grocer(db):
    """An approved food shop in Grenoble (Isère)."""
    return make_merchant(trade_name="Épicerie du Vieux Temple")
