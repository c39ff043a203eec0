"""A person's email and phone open their wallet (sign-in codes go there): an agent's change waits
for a manager of a funder helping the person, and a change that takes effect signs every device
out and warns the old contact."""

import json
import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.admin.models import LogEntry
from django.urls import reverse
from django.utils import timezone

from backoffice.contacts import (
    CONTACT_CHANGE_LIFETIME,
    ContactChangeClosed,
    ContactChangeNotAllowed,
    ContactInvalid,
    beneficiary_contact_change_confirm,
    beneficiary_contact_change_refuse,
    beneficiary_contact_change_request,
)
from beneficiary_app.services import contact_parse, sign_in_code_request
from funders.models import Membership
from funders.services import beneficiary_enrol
from tests.beneficiary_app.conftest import AppClient, last_code
from tests.concurrency import run_together
from tests.factories import BeneficiaryFactory, FunderFactory, make_staff
from tests.funders.conftest import client_for
from tests.markers import postgresql_only
from wallet.models import Beneficiary, ContactChangeRequest
from wallet.models.access import AppToken, SignInCode
from wallet.models.notifications import Notification

Role = Membership.Role
Status = ContactChangeRequest.Status

OLD_PHONE, OLD_EMAIL = "+33612345678", "marie.dupont@example.org"
NEW_PHONE, NEW_EMAIL = "+33698765400", "quelquun@example.net"


@pytest.fixture
def person(funder):
    beneficiary = BeneficiaryFactory(
        first_name="Marie", last_name="Dupont", email=OLD_EMAIL, phone=OLD_PHONE
    )
    beneficiary_enrol(funder=funder, beneficiary=beneficiary)
    return beneficiary


@pytest.fixture
def app(person):
    """The person's app, signed in before any change."""
    client = AppClient(person.wallet)
    assert client.read("/me").status_code == 200
    return client


@pytest.fixture
def asked(person, agent):
    """An agent asked for a new phone number."""
    return beneficiary_contact_change_request(
        beneficiary=person, field="phone", value=NEW_PHONE, by=agent
    )


def edit(user, person, **changes):
    """Save the person's admin form as `user`, with `changes` over what is recorded."""
    data = {
        "first_name": person.first_name,
        "last_name": person.last_name,
        "email": person.email,
        "phone": str(person.phone or ""),
        "postcode": person.postcode,
        "preferred_language": person.preferred_language,
        "consent_given_at_0": "",
        "consent_given_at_1": "",
        **changes,
    }
    return client_for(user).post(reverse("admin:wallet_beneficiary_change", args=[person.pk]), data)


def contact_changed_messages():
    return Notification.objects.filter(kind=Notification.Kind.CONTACT_CHANGED)


def decide_url(change, action: str) -> str:
    return reverse(f"admin:wallet_contactchangerequest_{action}", args=[change.pk])


# --- an agent asks, a manager decides ---------------------------------------------------------


def test_an_agent_editing_the_phone_and_email_changes_nothing_until_confirmed(person, agent, app):
    response = edit(agent, person, phone="06 98 76 54 00", email=NEW_EMAIL, postcode="38100")

    assert response.status_code == 302
    person.refresh_from_db()
    assert (person.email, person.phone.as_e164) == (OLD_EMAIL, OLD_PHONE)
    assert person.postcode == "38100"  # the rest of the form is saved
    pending = ContactChangeRequest.objects.filter(beneficiary=person, status=Status.PENDING)
    assert {(c.field, c.old_value, c.new_value, c.requested_by) for c in pending} == {
        ("phone", OLD_PHONE, NEW_PHONE, agent),
        ("email", OLD_EMAIL, NEW_EMAIL, agent),
    }
    assert not contact_changed_messages().exists()
    assert app.read("/me").status_code == 200
    # The person's page leads to the changes waiting for a manager.
    page = client_for(agent).get(reverse("admin:wallet_beneficiary_change", args=[person.pk]))
    [link] = re.findall(r'href="([^"]*contactchangerequest/\?[^"]*)"', page.content.decode())
    listing = client_for(agent).get(link.replace("&amp;", "&")).content.decode()
    assert NEW_PHONE in listing and NEW_EMAIL in listing
    # The admin's log says what the form changed, and only that.
    logged = LogEntry.objects.get(object_id=str(person.pk)).change_message
    assert json.loads(logged) == [{"changed": {"fields": ["Postcode"]}}]


def test_a_manager_confirms_the_contact_changes_the_old_one_is_told_and_signed_out(
    person, manager, asked, app
):
    page = client_for(manager).get(
        reverse("admin:wallet_contactchangerequest_change", args=[asked.pk])
    )
    assert decide_url(asked, "confirm") in page.content.decode()  # the button is there

    response = client_for(manager).post(decide_url(asked, "confirm"))

    assert response.status_code == 302
    person.refresh_from_db()
    assert person.phone.as_e164 == NEW_PHONE
    asked.refresh_from_db()
    assert (asked.status, asked.decided_by) == (Status.CONFIRMED, manager)
    sms = contact_changed_messages().get(channel="sms")
    assert sms.recipient == OLD_PHONE
    assert "••••••••00" in sms.body and NEW_PHONE not in sms.body
    assert "Votre numéro de mobile" in sms.body  # in the person's language
    email = contact_changed_messages().get(channel="email")
    assert email.recipient == OLD_EMAIL
    assert app.read("/me").status_code == 401


def test_a_manager_editing_the_contact_changes_it_at_once(person, manager, app):
    edit(manager, person, email=NEW_EMAIL)

    person.refresh_from_db()
    assert person.email == NEW_EMAIL
    change = ContactChangeRequest.objects.get(beneficiary=person)
    assert (change.status, change.requested_by, change.decided_by) == (
        Status.CONFIRMED,
        manager,
        manager,
    )
    assert contact_changed_messages().get(channel="email").recipient == OLD_EMAIL
    assert app.read("/me").status_code == 401


def test_the_warning_is_in_the_persons_language(person, manager):
    Beneficiary.objects.filter(pk=person.pk).update(preferred_language="en")
    person.refresh_from_db()

    beneficiary_contact_change_request(beneficiary=person, field="email", value="", by=manager)

    email = contact_changed_messages().get(channel="email")
    assert email.subject == "Your contact details for your aid were changed"
    assert "The email address we used to reach you" in email.body
    # With no email left, the phone is told too, as it was.
    assert contact_changed_messages().get(channel="sms").recipient == OLD_PHONE


def test_an_agent_cannot_confirm_nor_refuse(person, agent, asked):
    client = client_for(agent)

    assert client.post(decide_url(asked, "confirm")).status_code == 403
    assert client.post(decide_url(asked, "refuse")).status_code == 403
    with pytest.raises(ContactChangeNotAllowed):
        beneficiary_contact_change_confirm(change=asked, by=agent)
    asked.refresh_from_db()
    assert asked.status == Status.PENDING
    person.refresh_from_db()
    assert person.phone.as_e164 == OLD_PHONE


def test_another_funders_staff_neither_see_nor_decide_the_request(person, other_manager, asked):
    client = client_for(other_manager)

    change_page = reverse("admin:wallet_contactchangerequest_change", args=[asked.pk])
    assert client.get(change_page).status_code == 404
    assert client.post(decide_url(asked, "confirm")).status_code == 404
    assert client.post(decide_url(asked, "refuse")).status_code == 404
    listing = client.get(reverse("admin:wallet_contactchangerequest_changelist"))
    assert NEW_PHONE not in listing.content.decode()
    with pytest.raises(ContactChangeNotAllowed):
        beneficiary_contact_change_confirm(change=asked, by=other_manager)
    asked.refresh_from_db()
    assert asked.status == Status.PENDING


def test_confirming_twice_is_harmless(person, manager, asked):
    first = beneficiary_contact_change_confirm(change=asked, by=manager)
    again = beneficiary_contact_change_confirm(change=asked, by=manager)

    assert (again.pk, again.decided_at) == (first.pk, first.decided_at)
    assert contact_changed_messages().count() == 2  # once per old contact, email and SMS
    assert client_for(manager).post(decide_url(asked, "confirm")).status_code == 302
    assert contact_changed_messages().count() == 2


def test_a_refused_change_leaves_the_contact_and_cannot_be_confirmed(person, manager, asked):
    beneficiary_contact_change_refuse(change=asked, by=manager)

    with pytest.raises(ContactChangeClosed) as refused:
        beneficiary_contact_change_confirm(change=asked, by=manager)
    assert refused.value.code == "contact_change_refused"
    person.refresh_from_db()
    assert person.phone.as_e164 == OLD_PHONE
    assert not contact_changed_messages().exists()


def test_an_old_request_expires(person, manager, asked):
    later = timezone.now() + CONTACT_CHANGE_LIFETIME + timedelta(minutes=1)
    with time_machine.travel(later), pytest.raises(ContactChangeClosed) as late:
        beneficiary_contact_change_confirm(change=asked, by=manager)

    assert late.value.code == "contact_change_expired"
    asked.refresh_from_db()
    assert asked.status == Status.EXPIRED
    person.refresh_from_db()
    assert person.phone.as_e164 == OLD_PHONE


def test_asking_again_after_the_expiry_makes_a_new_request(person, agent, asked):
    later = timezone.now() + CONTACT_CHANGE_LIFETIME + timedelta(minutes=1)
    with time_machine.travel(later):
        again = beneficiary_contact_change_request(
            beneficiary=person, field="phone", value=NEW_PHONE, by=agent
        )

    asked.refresh_from_db()
    assert (asked.status, again.status) == (Status.EXPIRED, Status.PENDING)
    assert again.pk != asked.pk


def test_a_newer_request_withdraws_the_pending_one(person, agent, manager, asked):
    newer = beneficiary_contact_change_request(
        beneficiary=person, field="phone", value="+33611111111", by=agent
    )

    asked.refresh_from_db()
    assert (asked.status, newer.status) == (Status.WITHDRAWN, Status.PENDING)
    with pytest.raises(ContactChangeClosed) as withdrawn:
        beneficiary_contact_change_confirm(change=asked, by=manager)
    assert withdrawn.value.code == "contact_change_withdrawn"
    # The same request twice (a form sent again) is the same request.
    assert (
        beneficiary_contact_change_request(
            beneficiary=person, field="phone", value="06 11 11 11 11", by=agent
        ).pk
        == newer.pk
    )


def test_a_code_asked_before_the_change_no_longer_works(person, manager, asked):
    sign_in_code_request(contact=contact_parse(OLD_PHONE))
    code = last_code(OLD_PHONE)

    beneficiary_contact_change_confirm(change=asked, by=manager)

    anonymous = AppClient()
    answer = anonymous.send("/auth/token", {"contact": OLD_PHONE, "code": code})
    assert answer.status_code == 400
    assert SignInCode.objects.get(contact=OLD_PHONE).expires_at <= timezone.now()


# --- the attack, end to end -------------------------------------------------------------------


def test_an_agent_cannot_take_over_a_wallet_by_changing_its_phone(person, agent):
    # given an agent who types their own phone on the person's page
    edit(agent, person, phone="06 98 76 54 00")

    # when they ask the app for a code for that phone, and try to sign in with it
    anonymous = AppClient()
    assert anonymous.send("/auth/code", {"contact": NEW_PHONE}).status_code == 202
    tries = [anonymous.send("/auth/token", {"contact": NEW_PHONE, "code": "000000"})]

    # then no code was ever sent to their phone, and no token was given
    assert not Notification.objects.filter(recipient=NEW_PHONE).exists()
    assert [answer.status_code for answer in tries] == [400]
    assert not AppToken.objects.filter(wallet=person.wallet).exists()


# --- registering a new person stays an agent's work -------------------------------------------


def test_an_agent_registers_a_new_person_with_their_contacts(funder, agent):
    response = client_for(agent).post(
        reverse("admin:wallet_beneficiary_add"),
        {
            "first_name": "Léa",
            "last_name": "Martin",
            "email": "lea.martin@example.org",
            "phone": "06 55 44 33 22",
            "postcode": "38000",
            "preferred_language": "fr",
            "consent_given_at_0": "",
            "consent_given_at_1": "",
            "funder": funder.pk,
            "reference": "",
        },
    )

    assert response.status_code == 302, response.content
    person = Beneficiary.objects.get(last_name="Martin")
    assert (person.email, person.phone.as_e164) == ("lea.martin@example.org", "+33655443322")
    assert not ContactChangeRequest.objects.exists()


# --- at the same moment (PostgreSQL) ----------------------------------------------------------


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_a_confirmation_and_a_refusal_at_once_decide_once(person, manager, asked):
    # given a manager of a second funder helping the person, who refuses as the first confirms
    second = FunderFactory()
    beneficiary_enrol(funder=second, beneficiary=person)
    other = make_staff(funder=second, role=Role.MANAGER)

    outcomes = run_together(
        [
            lambda: beneficiary_contact_change_confirm(change=asked, by=manager),
            lambda: beneficiary_contact_change_refuse(change=asked, by=other),
        ]
    )

    # then one decided and the other was told so; the person's row says the same as the request
    assert sum(isinstance(outcome, ContactChangeClosed) for outcome in outcomes) == 1, outcomes
    asked.refresh_from_db()
    person.refresh_from_db()
    if asked.status == Status.CONFIRMED:
        assert person.phone.as_e164 == NEW_PHONE
        assert contact_changed_messages().count() == 2
    else:
        assert asked.status == Status.REFUSED
        assert person.phone.as_e164 == OLD_PHONE
        assert not contact_changed_messages().exists()


def test_a_new_email_is_kept_in_the_one_form_sign_in_compares(person, manager):
    change = beneficiary_contact_change_request(
        beneficiary=person, field="email", value="Nouvelle.Adresse@Exemple.FR", by=manager
    )
    person.refresh_from_db()
    assert change.new_value == person.email == "nouvelle.adresse@exemple.fr"


def test_a_look_alike_email_is_refused_when_asked_not_when_confirmed(person, agent):
    with pytest.raises(ContactInvalid):
        beneficiary_contact_change_request(
            beneficiary=person, field="email", value="\u017fam@gmail.com", by=agent
        )
    assert not ContactChangeRequest.objects.filter(beneficiary=person).exists()
