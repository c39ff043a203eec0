"""Schemathesis over the merchant API's own OpenAPI schema: generated requests, valid and
invalid, never get a 500 nor a response that breaks the schema."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from merchants.services import api_key_create
from tests.factories import BeneficiaryFactory, make_allocation, make_merchant, make_program
from wallet.models import Card

schema = schemathesis.openapi.from_wsgi("/api/merchant/v1/schema", application)

# What the API promises: no 500, and every answer (status, content type, headers, body) as the
# schema documents it. Not "every schema-valid request is accepted": a well-formed request for a
# card or an authorization that does not exist is rightly refused with a 4xx.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    # Django closes the database connection when a request ends; its test client unhooks that,
    # schemathesis's WSGI client does not. On PostgreSQL it would close the connection that holds
    # the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


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
