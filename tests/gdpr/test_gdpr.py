"""A beneficiary's personal data on request: the export holds everything about the person and
nothing about anyone else; the erasure leaves no trace of who they were anywhere in the database,
while the ledger, the payment decisions and every funder's figures stay exactly as they were."""

import json
from dataclasses import dataclass

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.urls import reverse
from simple_history.models import registered_models

from backoffice.contacts import beneficiary_contact_change_request
from beneficiary_app.services import (
    aidant_authorize,
    app_token_create,
    contact_parse,
    sign_in_code_request,
)
from funders import reports
from funders.models import (
    AllocationImport,
    Enrolment,
    Membership,
    Program,
    RecurringAllocation,
)
from funders.services import beneficiary_enrol
from gdpr.services import (
    BeneficiaryHoldsMoney,
    ErasureReasonMissing,
    beneficiary_data_export,
    beneficiary_erase,
)
from ledger.models import Account, Entry, Transfer
from ledger.verify import verify
from merchants.payments import payment_authorize, payment_refund
from tests.factories import (
    BeneficiaryFactory,
    make_allocation,
    make_merchant,
    make_payment_code,
    make_program,
    make_staff,
)
from tests.funders.conftest import client_for
from wallet.models import Beneficiary, Card, ContactChangeRequest, Decision, Pocket, Wallet
from wallet.models.access import Aidant, AppToken, SignInCode
from wallet.models.notifications import Notification, NotificationPreference, PushSubscription
from wallet.models.stripe_events import StripeEvent

Role = Membership.Role


@dataclass
class Person:
    beneficiary: Beneficiary
    programs: list[Program]
    card: Card
    words: list[str]  # what says who the person is, as typed or as copied elsewhere


def build_person(funder, other_funder, *, tag: str) -> Person:
    """A person helped by two funders, who paid, was refunded, was told about it, signed in,
    let an aidant see their wallet, has a Stripe card and appears in an import's report."""
    beneficiary = BeneficiaryFactory(
        first_name=f"Prénom{tag}",
        last_name=f"Nom{tag}",
        email=f"{tag.lower()}@example.org",
        phone=f"+3361234{int(tag[-1]) + 10:04d}",
        postcode="38100",
    )
    beneficiary_enrol(funder=funder, beneficiary=beneficiary, reference=f"DOSSIER-{tag}")
    program = make_program(funder=funder)
    other_program = make_program(funder=other_funder)
    other_program.name = f"Aide savoyarde {tag}"
    other_program.save(update_fields=["name"])
    make_allocation(program=program, beneficiary=beneficiary, amount=10_000)
    make_allocation(program=other_program, beneficiary=beneficiary, amount=4_000)
    wallet = beneficiary.wallet
    cardholder = f"ich_{tag}"
    card = Card.objects.create(
        wallet=wallet,
        kind="physical",
        status="active",
        last4="4242",
        stripe_card_id=f"ic_{tag}",
        stripe_cardholder_id=cardholder,
    )
    merchant = make_merchant()
    decision = payment_authorize(
        merchant=merchant,
        amount=2_500,
        currency="EUR",
        payment_code=make_payment_code(card.wallet),
        capture=True,
        idempotency_key=f"pay-{tag}",
    )
    payment_refund(merchant=merchant, decision=decision, amount=500, idempotency_key=f"r-{tag}")

    sign_in_code_request(contact=contact_parse(beneficiary.email))
    aidant_contact = f"aidant.{tag.lower()}@example.org"
    aidant, _ = aidant_authorize(
        wallet=wallet, contact=contact_parse(aidant_contact), name=f"Aidant{tag}"
    )
    sign_in_code_request(contact=contact_parse(aidant_contact))
    app_token_create(wallet=wallet)
    app_token_create(wallet=wallet, aidant=aidant)
    endpoint = f"https://push.example.org/send/{tag}"
    PushSubscription.objects.create(
        beneficiary=beneficiary, endpoint=endpoint, p256dh=f"KEY{tag}", auth=f"AUTH{tag}"
    )
    NotificationPreference.objects.create(
        beneficiary=beneficiary, kind="payment_approved", channel="sms", enabled=True
    )
    full_name = f"{beneficiary.first_name} {beneficiary.last_name}"
    StripeEvent.objects.create(
        stripe_id=f"evt_{tag}",
        type="issuing_card.updated",
        payload={
            "id": f"evt_{tag}",
            "data": {
                "object": {
                    "id": card.stripe_card_id,
                    "object": "issuing.card",
                    "shipping": {"name": full_name, "address": {"postal_code": "38100"}},
                    "cardholder": {
                        "id": cardholder,
                        "object": "issuing.cardholder",
                        "name": full_name[:24],
                        "email": beneficiary.email,
                        "phone_number": str(beneficiary.phone),
                        "individual": {
                            "first_name": beneficiary.first_name,
                            "last_name": beneficiary.last_name,
                        },
                        "billing": {"address": {"postal_code": "38100"}},
                    },
                }
            },
        },
    )
    AllocationImport.objects.create(
        program=program,
        filename=f"import-{tag}.csv",
        content=f"nom;prenom;email\n{beneficiary.last_name};{beneficiary.first_name};x\n".encode(),
        digest="0" * 64,
        status=AllocationImport.Status.APPLIED,
        report=[
            {
                "row": 2,
                "name": full_name,
                "reference": f"DOSSIER-{tag}",
                "beneficiary_id": beneficiary.pk,
                "beneficiary_name": full_name,
            }
        ],
    )
    schedule = RecurringAllocation.objects.create(
        program=program,
        name="Mensuel",
        amount=1_000,
        day_of_month=1,
        starts_on="2026-12-01",
        runs=3,
    )
    schedule.beneficiaries.add(beneficiary)
    staff = make_staff(funder=funder, role=Role.AGENT)
    LogEntry.objects.create(
        user=staff,
        content_type=ContentType.objects.get_for_model(Beneficiary),
        object_id=str(beneficiary.pk),
        object_repr=str(beneficiary),
        action_flag=CHANGE,
        change_message="[]",
    )
    words = [
        beneficiary.first_name,
        beneficiary.last_name,
        beneficiary.email,
        str(beneficiary.phone),
        f"DOSSIER-{tag}",
        aidant_contact,
        f"Aidant{tag}",
        endpoint,
        f"KEY{tag}",
    ]
    return Person(beneficiary, [program, other_program], card, words)


@pytest.fixture
def person(funder, other_funder):
    return build_person(funder, other_funder, tag="A1")


@pytest.fixture
def bystander(funder, other_funder):
    return build_person(funder, other_funder, tag="B2")


def database_text() -> str:
    """Every row of every table, as text: where a leftover would be found."""
    return "\n".join(
        repr(list(model._default_manager.values())) for model in apps.get_models()
    ) + repr(list(AllocationImport.objects.values_list("content", flat=True)))


def erase(person: Person, **kwargs) -> Beneficiary:
    return beneficiary_erase(
        beneficiary=person.beneficiary, by=None, reason="Demande du 12 mai", **kwargs
    )


# --- export --------------------------------------------------------------------------------


def test_export_holds_everything_the_platform_keeps_about_the_person(person):
    data = beneficiary_data_export(beneficiary=person.beneficiary)

    assert data["person"]["email"] == "a1@example.org"
    assert data["person"]["phone"] == str(person.beneficiary.phone)
    assert data["person"]["postcode"] == "38100"
    assert {e["file_number"] for e in data["enrolments"]} == {"DOSSIER-A1", ""}
    assert sorted(aid["amount"] for aid in data["aid"]) == [4_000, 10_000]
    assert sum(aid["available"] for aid in data["aid"]) == 14_000 - 2_500 + 500
    assert data["cards"] == [
        {
            "kind": "physical",
            "status": "active",
            "last4": "4242",
            "created_at": person.card.created_at.isoformat(),
        }
    ]
    [payment] = data["payments"]
    assert (payment["captured"], payment["refunded"]) == (2_500, 500)
    assert [refund["amount"] for refund in data["refunds"]] == [500]
    assert {m["kind"] for m in data["messages"]} >= {"allocation_granted", "sign_in_code"}
    assert {a["contact"] for a in data["aidants"]} == {"aidant.a1@example.org"}
    assert len(data["app_sessions"]) == 2
    assert {"message": "payment_approved", "channel": "sms", "sent": True} in data[
        "notification_preferences"
    ]
    assert [s["endpoint"] for s in data["push_subscriptions"]] == [
        "https://push.example.org/send/A1"
    ]
    json.dumps(data)  # ready to download as it is


def test_export_never_holds_secrets(person):
    text = json.dumps(beneficiary_data_export(beneficiary=person.beneficiary))

    assert "KEYA1" not in text and "AUTHA1" not in text  # push encryption keys
    assert "ic_A1" not in text and "ich_A1" not in text  # Stripe ids
    assert person.card.reference not in text  # what payments are made with; last4 names it
    for code in SignInCode.objects.values_list("digest", flat=True):
        assert code not in text
    sign_in_bodies = Notification.objects.filter(kind="sign_in_code").values_list("body", flat=True)
    for body in sign_in_bodies:
        assert body not in text  # the code itself, which opens the wallet


def test_export_holds_nothing_of_another_beneficiary(person, bystander):
    text = json.dumps(beneficiary_data_export(beneficiary=person.beneficiary))

    for word in bystander.words:
        assert word not in text


def test_a_funders_export_leaves_out_another_funders_aid(person, funder, other_funder):
    data = beneficiary_data_export(beneficiary=person.beneficiary, funders={funder.pk})
    text = json.dumps(data, ensure_ascii=False)

    assert [aid["funder"] for aid in data["aid"]] == [funder.name]
    assert [e["funder"] for e in data["enrolments"]] == [funder.name]
    assert other_funder.name not in text
    assert "Aide savoyarde" not in text


# --- erasure -------------------------------------------------------------------------------


def test_erasure_leaves_no_personal_data_anywhere(person, bystander):
    erased = erase(person, force=True)

    assert str(erased) == f"Personne effacée #{erased.pk}"
    assert (erased.email, str(erased.phone or ""), erased.postcode) == ("", "", "")
    text = database_text()
    for word in person.words:
        assert word not in text, word
    for word in bystander.words:
        assert word in text, word


def test_erasure_keeps_who_changed_the_contacts_but_not_the_contacts(person, funder):
    manager = make_staff(funder=funder, role=Role.MANAGER)
    agent = make_staff(funder=funder, role=Role.AGENT)
    beneficiary = person.beneficiary
    beneficiary_contact_change_request(
        beneficiary=beneficiary, field="email", value="nouvelle.a1@example.org", by=manager
    )
    beneficiary.refresh_from_db()
    waiting = beneficiary_contact_change_request(
        beneficiary=beneficiary, field="phone", value="+33699887766", by=agent
    )
    exported = beneficiary_data_export(beneficiary=beneficiary)["contact_changes"]
    assert [(c["before"], c["after"], c["status"]) for c in exported] == [
        ("a1@example.org", "nouvelle.a1@example.org", "confirmed"),
        (str(person.beneficiary.phone), "+33699887766", "pending"),
    ]

    erase(person, force=True)

    changes = ContactChangeRequest.objects.filter(beneficiary=beneficiary)
    assert {(c.old_value, c.new_value) for c in changes} == {("", "")}
    assert changes.get(pk=waiting.pk).status == ContactChangeRequest.Status.WITHDRAWN
    text = database_text()
    for contact in ("a1@example.org", "nouvelle.a1@example.org", "+33699887766"):
        assert contact not in text, contact


def test_erasure_closes_every_way_in(person):
    beneficiary = person.beneficiary
    old_email = beneficiary.email

    erase(person, force=True)

    wallet = Wallet.objects.get(beneficiary=beneficiary)
    assert wallet.is_frozen
    assert Card.objects.get(pk=person.card.pk).status == Card.Status.CANCELED
    assert not AppToken.objects.filter(wallet=wallet, revoked_at__isnull=True).exists()
    assert not Aidant.objects.filter(wallet=wallet, revoked_at__isnull=True).exists()
    assert not SignInCode.objects.filter(contact=old_email).exists()
    assert not PushSubscription.objects.filter(beneficiary=beneficiary).exists()
    assert sign_in_code_request(contact=contact_parse(old_email)) is None
    assert not RecurringAllocation.objects.filter(beneficiaries=beneficiary).exists()


def test_erasure_redacts_the_outbox_and_sends_nothing_more(person):
    outbox = Notification.objects.filter(beneficiary=person.beneficiary)
    count = outbox.count()

    erase(person, force=True)

    assert outbox.count() == count  # what was sent, and when, is still told
    assert not outbox.exclude(recipient="", subject="", body="").exists()
    assert not outbox.filter(next_attempt_at__isnull=False).exists()


def test_erasure_keeps_the_ledger_and_every_funders_figures(person, bystander):
    programs = Program.objects.filter(pk__in=[p.pk for p in person.programs])

    def snapshot():
        return (
            reports.program_figures(programs=list(programs)),
            list(Account.objects.order_by("pk").values_list("pk", "balance", "pending")),
            list(Entry.objects.order_by("pk").values_list("pk", "account", "amount")),
            Transfer.objects.count(),
            list(Decision.objects.order_by("pk").values_list("pk", "status", "approved_amount")),
            list(Pocket.objects.order_by("pk").values_list("pk", "allocation__status")),
        )

    before = snapshot()

    erase(person, force=True)

    assert snapshot() == before
    assert verify() == []
    call_command("ledger", "verify")


def test_erasure_is_refused_while_money_is_left(person):
    with pytest.raises(BeneficiaryHoldsMoney) as refused:
        erase(person)

    assert refused.value.code == "beneficiary_holds_money"
    assert refused.value.details == {"balance": 14_000 - 2_500 + 500, "held": 0}
    person.beneficiary.refresh_from_db()
    assert person.beneficiary.erased_at is None
    assert person.beneficiary.email == "a1@example.org"


def test_erasure_without_money_left_needs_no_force(funder, other_funder):
    beneficiary = BeneficiaryFactory()
    beneficiary_enrol(funder=funder, beneficiary=beneficiary)

    erased = beneficiary_erase(beneficiary=beneficiary, by=None, reason="Demande")

    assert erased.erased_at is not None


def test_erasure_needs_a_reason(person):
    with pytest.raises(ErasureReasonMissing) as refused:
        beneficiary_erase(beneficiary=person.beneficiary, by=None, reason="  ", force=True)

    assert refused.value.field == "reason"


def test_erasing_twice_changes_nothing(person):
    first = erase(person, force=True)

    second = beneficiary_erase(
        beneficiary=person.beneficiary, by=None, reason="Autre raison", force=True
    )

    assert (second.erased_at, second.erasure_reason) == (first.erased_at, "Demande du 12 mai")


def test_no_history_table_copies_a_persons_data():
    """simple-history copies every field of the models it follows: a history of one of these
    would keep what the erasure deletes, and gdpr.services would have to erase it too."""
    personal = {Beneficiary, Enrolment, Aidant, Notification, PushSubscription, SignInCode}

    assert not personal & set(registered_models.values())


# --- admin ---------------------------------------------------------------------------------


def personal_data_url(beneficiary) -> str:
    return reverse("admin:wallet_beneficiary_personal_data", args=[beneficiary.pk])


def erase_url(beneficiary) -> str:
    return reverse("admin:wallet_beneficiary_erase", args=[beneficiary.pk])


@pytest.fixture
def helped_by_one(funder):
    beneficiary = BeneficiaryFactory(email="seul@example.org")
    make_allocation(program=make_program(funder=funder), beneficiary=beneficiary, amount=1_000)
    return beneficiary


def test_an_agent_exports_what_their_funder_sees(person, funder):
    client = client_for(make_staff(funder=funder, role=Role.AGENT))

    response = client.get(personal_data_url(person.beneficiary))

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    data = json.loads(response.content)
    assert data["person"]["email"] == "a1@example.org"
    assert "Aide savoyarde" not in response.content.decode()


def test_the_operator_exports_everything(person, operator):
    response = client_for(operator).get(personal_data_url(person.beneficiary))

    assert len(json.loads(response.content)["aid"]) == 2


def test_another_funders_staff_cannot_export_nor_erase(helped_by_one, other_funder):
    client = client_for(make_staff(funder=other_funder, role=Role.ADMINISTRATOR))

    assert client.get(personal_data_url(helped_by_one)).status_code == 404
    assert client.post(erase_url(helped_by_one), {"reason": "x"}).status_code == 404
    helped_by_one.refresh_from_db()
    assert helped_by_one.erased_at is None


@pytest.mark.parametrize("role", [Role.AGENT, Role.MANAGER])
def test_only_an_administrator_erases(helped_by_one, funder, role):
    client = client_for(make_staff(funder=funder, role=role))

    response = client.post(erase_url(helped_by_one), {"reason": "Demande"})

    assert response.status_code == 403
    helped_by_one.refresh_from_db()
    assert helped_by_one.erased_at is None


def test_an_administrator_erases_after_confirming(helped_by_one, funder):
    client = client_for(make_staff(funder=funder, role=Role.ADMINISTRATOR))
    assert client.get(erase_url(helped_by_one)).status_code == 200

    refused = client.post(erase_url(helped_by_one), {"reason": "Demande du 12 mai"})
    assert refused.status_code == 200
    assert refused.context["money_left"]

    response = client.post(erase_url(helped_by_one), {"reason": "Demande du 12 mai", "force": "on"})

    assert response.status_code == 302
    helped_by_one.refresh_from_db()
    assert helped_by_one.erased_at is not None
    assert helped_by_one.email == ""


def test_a_person_another_funder_also_helps_is_erased_by_the_operator_only(
    person, funder, operator
):
    administrator = client_for(make_staff(funder=funder, role=Role.ADMINISTRATOR))

    refused = administrator.post(erase_url(person.beneficiary), {"reason": "x", "force": "on"})
    done = client_for(operator).post(erase_url(person.beneficiary), {"reason": "x", "force": "on"})

    assert refused.status_code == 403
    assert done.status_code == 302
    person.beneficiary.refresh_from_db()
    assert person.beneficiary.erased_at is not None


def test_the_export_action_downloads_one_persons_data(helped_by_one, funder):
    client = client_for(make_staff(funder=funder, role=Role.AGENT))

    response = client.post(
        reverse("admin:wallet_beneficiary_changelist"),
        {"action": "export_personal_data", "_selected_action": [helped_by_one.pk]},
    )

    assert json.loads(response.content)["person"]["email"] == "seul@example.org"


def test_an_agent_is_not_offered_the_erase_action(funder):
    client = client_for(make_staff(funder=funder, role=Role.AGENT))

    response = client.get(reverse("admin:wallet_beneficiary_changelist"))

    actions = dict(response.context["action_form"].fields["action"].choices)
    assert "export_personal_data" in actions
    assert "erase_personal_data" not in actions


def test_no_aid_is_granted_to_a_person_whose_data_was_erased(db):
    from django.utils import timezone

    from core.errors import InvalidState
    from funders.services import allocation_create
    from gdpr.services import beneficiary_erase
    from tests.factories import BeneficiaryFactory, make_program

    person = BeneficiaryFactory()
    beneficiary_erase(beneficiary=person, by=None, reason="Demande de la personne")
    with pytest.raises(InvalidState):
        allocation_create(
            program=make_program(),
            beneficiary=person,
            amount=1_000,
            valid_from=timezone.now(),
            valid_until=None,
            idempotency_key="after-erasure",
        )
