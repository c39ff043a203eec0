"""Revoking allocations from the admin: what is left returns to the program, with the reason."""

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from funders.models import Allocation
from tests.factories import make_allocation, make_program
from tests.funders.conftest import client_for


def revoke(client, allocations, reason="Déménagement hors du département"):
    data = {"action": "revoke", ACTION_CHECKBOX_NAME: [a.pk for a in allocations]}
    if reason is not None:
        data |= {"reason": reason, "revoke": "1"}
    return client.post(reverse("admin:funders_allocation_changelist"), data)


def test_a_manager_revokes_and_the_rest_returns_to_the_program(manager_client, funder, manager):
    program = make_program(funder=funder, funded=20_000)
    allocation = make_allocation(program=program, amount=8_000)
    assert revoke(manager_client, [allocation], reason=None).status_code == 200  # the form
    assert revoke(manager_client, [allocation]).status_code == 302
    allocation.refresh_from_db()
    assert allocation.status == Allocation.Status.REVOKED
    assert allocation.end_reason == "Déménagement hors du département"
    program.float_account.refresh_from_db()
    assert program.float_account.available == 20_000
    assert allocation.history.first().history_user == manager


def test_revoking_needs_a_reason(manager_client, funder):
    allocation = make_allocation(program=make_program(funder=funder))
    assert revoke(manager_client, [allocation], reason="").status_code == 200
    allocation.refresh_from_db()
    assert allocation.status == Allocation.Status.ACTIVE


def test_an_agent_cannot_revoke(agent, funder):
    allocation = make_allocation(program=make_program(funder=funder))
    revoke(client_for(agent), [allocation])
    allocation.refresh_from_db()
    assert allocation.status == Allocation.Status.ACTIVE


def test_another_funders_allocations_are_not_revoked(manager_client, other_funder):
    theirs = make_allocation(program=make_program(funder=other_funder))
    revoke(manager_client, [theirs])
    theirs.refresh_from_db()
    assert theirs.status == Allocation.Status.ACTIVE
