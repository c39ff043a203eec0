"""Cards from the back office: managers order them, agents freeze, unfreeze and cancel them for
the people they help; Stripe follows. Another funder's staff reach none of it."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.test import Client
from django.urls import reverse

from funders.models import Membership
from funders.services import beneficiary_enrol
from tests.factories import BeneficiaryFactory, FunderFactory, make_staff
from wallet.models import Card

pytestmark = pytest.mark.django_db

Role = Membership.Role


def staff_client(funder, role):
    client = Client()
    client.force_login(make_staff(funder=funder, role=role))
    return client


def act(client, model, action, objects):
    return client.post(
        reverse(f"admin:wallet_{model}_changelist"),
        {"action": action, ACTION_CHECKBOX_NAME: [o.pk for o in objects]},
    )


def enrolled(funder):
    person = BeneficiaryFactory()
    beneficiary_enrol(funder=funder, beneficiary=person)
    return person


def test_a_manager_orders_a_virtual_card_issued_at_stripe(
    stripe_fake, eager_tasks, django_capture_on_commit_callbacks
):
    funder = FunderFactory()
    person = enrolled(funder)
    with django_capture_on_commit_callbacks(execute=True):
        act(staff_client(funder, Role.MANAGER), "wallet", "issue_virtual_card", [person.wallet])
    card = Card.objects.get(wallet=person.wallet)
    assert card.stripe_card_id and card.last4
    assert len(stripe_fake.sent("POST", "/v1/issuing/cards")) == 1


def test_an_agent_cannot_order_a_card(stripe_fake, eager_tasks):
    funder = FunderFactory()
    person = enrolled(funder)
    act(staff_client(funder, Role.AGENT), "wallet", "issue_virtual_card", [person.wallet])
    assert not Card.objects.exists()
    assert not stripe_fake.sent("POST", "/v1/issuing/cards")


def test_an_agent_freezes_a_card_and_stripe_is_told(
    stripe_fake, eager_tasks, django_capture_on_commit_callbacks
):
    funder = FunderFactory()
    person = enrolled(funder)
    with django_capture_on_commit_callbacks(execute=True):
        act(staff_client(funder, Role.MANAGER), "wallet", "issue_virtual_card", [person.wallet])
    card = Card.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        act(staff_client(funder, Role.AGENT), "card", "freeze", [card])
    card.refresh_from_db()
    assert card.status == Card.Status.FROZEN
    (update,) = stripe_fake.sent("POST", f"/v1/issuing/cards/{card.stripe_card_id}")
    assert update.form["status"] == "inactive"


def test_another_funders_agent_cannot_freeze_the_card(db):
    funder, other = FunderFactory(), FunderFactory()
    person = enrolled(funder)
    card = Card.objects.create(wallet=person.wallet, kind="virtual", status="active")
    act(staff_client(other, Role.AGENT), "card", "freeze", [card])
    card.refresh_from_db()
    assert card.status == Card.Status.ACTIVE


def test_without_stripe_keys_ordering_a_card_says_cards_are_not_available(settings, db):
    settings.STRIPE_SECRET_KEY = ""
    funder = FunderFactory()
    person = enrolled(funder)
    answer = act(
        staff_client(funder, Role.MANAGER), "wallet", "issue_virtual_card", [person.wallet]
    )
    assert answer.status_code == 302
    assert not Card.objects.exists()


def test_a_manager_tops_up_the_card_balance_once_and_it_funds_the_program(stripe_fake):
    from tests.factories import make_program

    funder = FunderFactory()
    program = make_program(funder=funder, funded=0)
    client = staff_client(funder, Role.MANAGER)
    page = reverse("admin:funders_program_topup", args=[program.pk])
    form = {"amount": "2 500", "token": "form-shown-once"}
    assert client.post(page, form).status_code == 302
    assert client.post(page, form).status_code == 302  # the same page sent again
    (topup,) = {r.headers.get("Idempotency-Key") for r in stripe_fake.sent("POST", "/v1/topups")}
    assert topup == f"topup:{program.pk}:form-shown-once"
    assert program.fundings.get().amount == 250_000
    program.float_account.refresh_from_db()
    assert program.float_account.available == 250_000


def test_another_funders_manager_cannot_top_up(stripe_fake):
    from tests.factories import make_program

    program = make_program(funder=FunderFactory(), funded=0)
    client = staff_client(FunderFactory(), Role.MANAGER)
    page = reverse("admin:funders_program_topup", args=[program.pk])
    assert client.post(page, {"amount": "10", "token": "t"}).status_code == 404
    assert not stripe_fake.sent("POST", "/v1/topups")
