import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.test import Client

from funders.models import Membership
from tests.factories import (
    FunderFactory,
    give_second_factor,
    make_allocation,
    make_merchant,
    make_program,
    make_staff,
    second_factor_pass,
)

Role = Membership.Role


def pytest_configure(config):
    # Whatever part of the suite runs, its logs, error answers and admin pages are checked for
    # secrets and card numbers (tests/security/conftest.py).
    from tests.security.conftest import SecretsInLogs

    config.pluginmanager.register(SecretsInLogs(), "secrets-in-logs")
    # The test client and the live server speak plain http, as SECURE_SSL_REDIRECT=false lets
    # a server do; the production settings themselves are checked in tests/security/test_deploy.py.
    settings.SECURE_SSL_REDIRECT = False
    config.addinivalue_line(
        "markers",
        "second_factor_not_given: client.force_login leaves the admin's second factor to give",
    )


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
    user = get_user_model().objects.create_superuser("operator", "ops@example.org", "password")
    give_second_factor(user)
    return user


# --- the admin's second factor (backoffice.second_factor) in tests -------------------------


@pytest.fixture(autouse=True)
def _force_login_passes_second_factor(request, monkeypatch):
    """`client.force_login(user)` signs in past the second factor too: a test about an admin
    page is not about the sign-in. A test of the sign-in itself marks itself
    `@pytest.mark.second_factor_not_given` to get a session that gave none (see
    tests/security/test_second_factor.py); browser tests sign in as people do
    (tests/browser/signin.py)."""
    if request.node.get_closest_marker("second_factor_not_given"):
        return
    force_login = Client.force_login

    def force_login_verified(self, user, backend=None):
        force_login(self, user, backend)
        second_factor_pass(self, user)

    monkeypatch.setattr(Client, "force_login", force_login_verified)


@pytest.fixture
def static_changed(monkeypatch, tmp_path):
    """change(name): from now on the static file `name` is found with other contents, as after
    a new version of it (the installable apps' service workers must then change)."""

    def change(name: str) -> None:
        changed = tmp_path / name.replace("/", "-")
        changed.write_text("/* a new version */")
        find = finders.find
        monkeypatch.setattr(
            finders,
            "find",
            lambda wanted, *args, **kwargs: (
                str(changed) if wanted == name else find(wanted, *args, **kwargs)
            ),
        )

    return change
