"""What both APIs' schemathesis runs share: the checks that say what an API promises, and the
fixture that keeps the test's database connection open under schemathesis's WSGI client."""

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from schemathesis.checks import load_all_checks

# Schemathesis's checks: no 500; every answer (status, content type, headers, body)
# as the schema documents it; schema-invalid requests refused; a required header left out
# refused; no undocumented method; authentication not ignored; a deleted or
# unknown resource not served.
load_all_checks()
CHECKS = [
    check
    for check in REGISTERED_CHECKS.get_all()
    # Left out: a schema-valid request must be accepted (a well-formed payment code, SIRET or
    # amount the platform does not hold is rightly refused with a documented 4xx).
    if check.__name__ != "positive_data_acceptance"
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
