"""Schemathesis over the merchant API's own OpenAPI schema: generated requests, valid and
invalid, never get a 500 nor a response that breaks the schema."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from config.wsgi import application
from merchants.services import api_key_create
from tests.factories import BeneficiaryFactory, make_allocation, make_merchant, make_program
from tests.fuzzing import CHECKS, keep_the_test_connection  # noqa: F401 (fixture)
from wallet.models import Card

schema = schemathesis.openapi.from_wsgi("/api/merchant/v1/schema", application)
# The key is the test's own (auth_headers): a case schemathesis made "negative" by leaving
# the Authorization header out would be sent with it all the same, and read as accepted.
schema.config.generation.update(with_security_parameters=False)

pytestmark = pytest.mark.usefixtures("keep_the_test_connection")


@pytest.fixture
def auth_headers(db):
    merchant = make_merchant()
    beneficiary = BeneficiaryFactory()
    make_allocation(program=make_program(), beneficiary=beneficiary)
    Card.objects.create(wallet=beneficiary.wallet, kind="virtual", status="active")
    return {"Authorization": f"Bearer {api_key_create(merchant=merchant, name='fuzz')[1]}"}


@schema.parametrize()
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_no_input_breaks_the_api(case, auth_headers):
    case.call_and_validate(headers=auth_headers, checks=CHECKS)
