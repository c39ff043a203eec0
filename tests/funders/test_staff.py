"""Administrators run their funder's staff: invite, change a role, remove; nobody else does."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from core.errors import InvalidState
from funders.models import Membership
from funders.services import membership_change_role, membership_remove, staff_invite
from tests.funders.conftest import client_for
from tests.markers import postgresql_case_folding

Role = Membership.Role


def invite(client, funder, email="claire.martin@isere.fr", role=Role.MANAGER):
    return client.post(
        reverse("admin:funders_membership_add"),
        {
            "email": email,
            "first_name": "Claire",
            "last_name": "Martin",
            "funder": funder.pk,
            "role": role,
        },
    )


@pytest.mark.django_db(transaction=True)
def test_an_invited_person_chooses_a_password_from_the_email_and_signs_in(administrator, funder):
    # given an administrator inviting a new manager
    answer = invite(client_for(administrator), funder)
    assert answer.status_code == 302

    # then the person has an account with no password, and an email with a one-time link
    user = get_user_model().objects.get(email="claire.martin@isere.fr")
    assert user.is_staff and not user.has_usable_password()
    assert Membership.objects.get(user=user).role == Role.MANAGER
    (message,) = mail.outbox
    link = re.search(r"https?://\S+/admin/reset/\S+/", message.body).group(0)

    # when they follow it and choose a password
    client = Client()
    form_page = client.get(link, follow=True)
    client.post(
        form_page.redirect_chain[-1][0],
        {
            "new_password1": "Un mot de passe solide 42",
            "new_password2": "Un mot de passe solide 42",
        },
    )

    # then they sign in to the back office, where they set up their second factor first
    answer = Client().post(
        reverse("admin:login"),
        {
            "username": user.username,
            "password": "Un mot de passe solide 42",
            "next": reverse("admin:index"),
        },
        follow=True,
    )
    assert answer.redirect_chain[-1][0].startswith(reverse("second-factor-setup"))


def test_a_manager_cannot_reach_the_staff_pages(manager_client, funder):
    assert manager_client.get(reverse("admin:funders_membership_changelist")).status_code == 403
    assert invite(manager_client, funder).status_code == 403


def test_an_administrator_cannot_invite_into_another_funder(administrator, other_funder):
    answer = invite(client_for(administrator), other_funder)
    assert answer.status_code == 200  # the form again, with the choice refused
    assert "funder" in answer.context["adminform"].form.errors
    assert not get_user_model().objects.filter(email="claire.martin@isere.fr").exists()


def test_inviting_someone_already_on_the_staff_is_refused(administrator, manager, funder):
    answer = invite(client_for(administrator), funder, email=manager.email)
    assert answer.status_code == 302
    assert Membership.objects.filter(user=manager).count() == 1


def test_the_last_administrator_cannot_be_removed_or_demoted(administrator):
    membership = Membership.objects.get(user=administrator)
    with pytest.raises(InvalidState):
        membership_remove(membership=membership)
    with pytest.raises(InvalidState):
        membership_change_role(membership=membership, role=Role.AGENT)
    assert Membership.objects.get(user=administrator).role == Role.ADMINISTRATOR


def test_removing_a_person_from_their_last_funder_closes_their_back_office(administrator, manager):
    membership_remove(membership=Membership.objects.get(user=manager))
    manager.refresh_from_db()
    assert not manager.is_staff
    assert client_for(manager).get(reverse("admin:index")).status_code == 302  # to sign-in


def test_a_role_change_is_kept_in_the_history(administrator, manager):
    client = client_for(administrator)
    membership = Membership.objects.get(user=manager)
    client.post(
        reverse("admin:funders_membership_change", args=[membership.pk]),
        {"role": Role.AGENT},
    )
    membership.refresh_from_db()
    assert membership.role == Role.AGENT
    assert membership.history.count() == 2


# --- who an address names: its canonical form, with "=" --------------------------------------


@pytest.fixture
def sam(other_funder):
    """Someone with an account at sam@gmail.com, on no staff of this funder."""
    return get_user_model().objects.create_user(
        username="sam", email="sam@gmail.com", password="password", is_staff=True
    )


def test_an_invitation_in_another_case_names_the_person_already_known(administrator, sam, funder):
    answer = invite(client_for(administrator), funder, email="Sam@GMAIL.com")

    assert answer.status_code == 302
    assert Membership.objects.get(funder=funder, role=Role.MANAGER).user == sam
    assert get_user_model().objects.filter(email__icontains="sam").count() == 1


@postgresql_case_folding
def test_an_invitation_to_a_look_alike_address_names_a_new_person(administrator, sam, funder):
    # gmail with a dotless i (U+0131) is another domain, which PostgreSQL's UPPER() folds to GMAIL
    membership = staff_invite(
        funder=funder,
        email="sam@gma\u0131l.com",
        first_name="Sam",
        last_name="Martin",
        role=Role.MANAGER,
        site_url="http://testserver/",
    )

    assert membership.user != sam
    assert membership.user.email == "sam@xn--gmal-nza.com"
    assert not Membership.objects.filter(user=sam, funder=funder).exists()


def test_an_invitation_to_a_non_ascii_address_is_refused_on_its_field(administrator, funder):
    answer = invite(client_for(administrator), funder, email="\u017fam@gmail.com")

    assert answer.status_code == 200
    assert "email" in answer.context["adminform"].form.errors
    assert not Membership.objects.filter(funder=funder, role=Role.MANAGER).exists()
