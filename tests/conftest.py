import pytest
from django.core.cache import cache

from tests.factories import make_allocation, make_merchant, make_program


def pytest_configure(config):
    # Whatever part of the suite runs, its logs, error answers and admin pages are checked for
    # secrets and card numbers (tests/security/conftest.py).
    from tests.security.conftest import SecretsInLogs

    config.pluginmanager.register(SecretsInLogs(), "secrets-in-logs")


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
