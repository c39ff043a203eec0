"""Two funders and their staff: most back-office tests check that one funder's staff never
reach the other's records."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from funders.models import Membership
from tests.factories import FunderFactory, make_staff

Role = Membership.Role


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


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def manager_client(manager):
    return client_for(manager)


@pytest.fixture
def agent_client(agent):
    return client_for(agent)


@pytest.fixture
def other_client(other_manager):
    return client_for(other_manager)
