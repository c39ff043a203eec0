"""What both APIs' schemathesis runs share: the checks that say what an API promises, and the
fixture that keeps the test's database connection open under schemathesis's WSGI client."""

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

# No 500, and every answer (status, content type, headers, body) as the schema documents it. Not
# "every schema-valid request is accepted": a well-formed request for an object that does not
# exist, or is another tenant's, is rightly refused with a 4xx.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def keep_the_test_connection():
    # Django closes the database connection when a request ends; its test client unhooks that,
    # schemathesis's WSGI client does not. On PostgreSQL it would close the connection that holds
    # the test's transaction.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
