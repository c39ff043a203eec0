"""Schemathesis over the app API's own OpenAPI schema: generated requests, valid and invalid,
never get a 500 nor a response that breaks the schema."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from beneficiary_app.services import aidant_authorize, app_token_create, contact_parse
from config.wsgi import application
from merchants.payments import payment_authorize
from tests.factories import (
    BeneficiaryFactory,
    make_allocation,
    make_merchant,
    make_payment_code,
    make_program,
)
from tests.fuzzing import CHECKS, keep_the_test_connection  # noqa: F401 (fixture)
from wallet.models import Card

schema = schemathesis.openapi.from_wsgi("/api/app/v1/schema", application)
# The key is the test's own (auth_headers): a case schemathesis made "negative" by leaving
# the Authorization header out would be sent with it all the same, and read as accepted.
schema.config.generation.update(with_security_parameters=False)

pytestmark = pytest.mark.usefixtures("keep_the_test_connection")


@pytest.fixture
def auth_headers(db):
    beneficiary = BeneficiaryFactory(email="fuzz@example.org")
    program = make_program(rules={"categories": {"allow_groups": ["food"]}})
    make_allocation(program=program, beneficiary=beneficiary)
    card = Card.objects.create(wallet=beneficiary.wallet, kind="virtual", status="active")
    merchant = make_merchant()
    payment_authorize(
        merchant=merchant,
        amount=1000,
        currency="EUR",
        payment_code=make_payment_code(card.wallet),
        idempotency_key="z",
    )
    payment_authorize(
        merchant=make_merchant(mcc="5813"), amount=900, currency="EUR",
        payment_code=make_payment_code(card.wallet),
        idempotency_key="y",
    )  # fmt: skip
    aidant_authorize(wallet=beneficiary.wallet, contact=contact_parse("aidant@example.org"))
    token = app_token_create(wallet=beneficiary.wallet)[1]
    return {"Authorization": f"Bearer {token}"}


@schema.parametrize()
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_input_breaks_the_api(case, auth_headers):
    case.call_and_validate(headers=auth_headers, checks=CHECKS)
