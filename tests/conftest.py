import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache

from funders.models import Membership
from tests.factories import FunderFactory, make_allocation, make_merchant, make_program, make_staff

Role = Membership.Role


def pytest_configure(config):
    # Whatever part of the suite runs, its logs, error answers and admin pages are checked for
    # secrets and card numbers (tests/security/conftest.py).
    from tests.security.conftest import SecretsInLogs

    config.pluginmanager.register(SecretsInLogs(), "secrets-in-logs")
    # The test client and the live server speak plain http, as SECURE_SSL_REDIRECT=false lets
    # a server do; the production settings themselves are checked in tests/security/test_deploy.py.
    settings.SECURE_SSL_REDIRECT = False


@pytest.fixture
def program(db):
    return make_program()


@pytest.fixture
def allocation(program):
    return make_allocation(program=program, amount=10_000)


@pytest.fixture
def pocket(allocation):
    return allocation.pocket


@pytest.fixture
def merchant(db):
    return make_merchant()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate-limit counters live in the cache: each test starts with none."""
    cache.clear()
    yield
    cache.clear()


# --- two funders and their staff, for every test that checks who may do what ---------------


@pytest.fixture
def funder(db):
    return FunderFactory(name="Département de l'Isère")


@pytest.fixture
def other_funder(db):
    return FunderFactory(name="Département de la Savoie")


@pytest.fixture
def administrator(funder):
    return make_staff(funder=funder, role=Role.ADMINISTRATOR)


@pytest.fixture
def manager(funder):
    return make_staff(funder=funder, role=Role.MANAGER)


@pytest.fixture
def agent(funder):
    return make_staff(funder=funder, role=Role.AGENT)


@pytest.fixture
def other_manager(other_funder):
    return make_staff(funder=other_funder, role=Role.MANAGER)


@pytest.fixture
def operator(db):
    return get_user_model().objects.create_superuser("operator", "ops@example.org", "password")
