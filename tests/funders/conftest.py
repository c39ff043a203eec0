"""The back office as each funder's staff sees it (the two funders and their staff are
fixtures of tests/conftest.py): most back-office tests check that one funder's staff never reach
the other's records."""

import pytest
from django.test import Client

from funders.models import Membership

Role = Membership.Role


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
