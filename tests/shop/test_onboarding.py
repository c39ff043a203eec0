"""A shop registers from its SIRET, is approved by an operator in the admin, and is told."""

import pytest
from django.core import mail

from merchants.acceptors import card_acceptor_add
from merchants.models import Merchant
from merchants.services import merchant_approve
from shop.models import ShopMember
from tests.factories import siret
from tests.shop.conftest import PASSWORD, make_shop, signed_in, sirene_establishment

DETAILS = {
    "iban": "FR76 3000 6000 0112 3456 7890 189",
    "bic": "AGRIFRPP",
    "owner_email": "Jeanne.Martin@Example.org",
    "password": PASSWORD,
    "password_again": PASSWORD,
}


# What a shop types when the register is not reachable.
TYPED = {
    "legal_name": "Boulangerie Haxo SARL",
    "trade_name": "Le Fournil",
    "address": "1 rue Haxo",
    "postcode": "38000",
    "city": "Grenoble",
    "commune_code": "38185",
    "mcc": "5462",
}


def _form_values(response) -> dict:
    form = response.context["form"]
    return {name: form[name].value() or "" for name in form.fields}


@pytest.mark.django_db
def test_a_shop_registers_from_its_siret_with_the_register_details(client, sirene):
    number = siret(82_001)
    sirene.known[number] = sirene_establishment(number)
    response = client.post("/shop/register/", {"siret": number[:3] + " " + number[3:]})
    assert response.status_code == 302
    response = client.get("/shop/register/details/")
    values = _form_values(response)
    assert values["legal_name"] == "LA FOURNEE DU VIEUX TEMPLE"
    assert values["trade_name"] == "AU BON PAIN"
    assert (values["postcode"], values["commune_code"]) == ("38000", "38185")
    assert values["mcc"] == "5462"  # suggested from NAF 47.24Z, a bakery
    assert "Found in the national company register" in response.content.decode() or (
        "Trouvé" in response.content.decode()
    )
    # The shop corrects its trade name and sends it with its bank details.
    response = client.post(
        "/shop/register/details/", {**values, **DETAILS, "trade_name": "Au Bon Pain Grenoble"}
    )
    assert response.status_code == 302, response.context["form"].errors
    merchant = Merchant.objects.get(siret=number)
    assert merchant.status == Merchant.Status.PENDING
    assert (merchant.trade_name, merchant.mcc, merchant.iban) == (
        "Au Bon Pain Grenoble",
        "5462",
        "FR7630006000011234567890189",
    )
    owner = ShopMember.objects.get(merchant=merchant)
    assert (owner.email, owner.role, owner.user.is_staff) == (
        "jeanne.martin@example.org",
        "owner",
        False,
    )


@pytest.mark.django_db
def test_without_register_credentials_the_shop_types_its_details(client, settings):
    settings.SIRENE_API_KEY = ""
    number = siret(82_002)
    client.post("/shop/register/", {"siret": number})
    response = client.get("/shop/register/details/")
    assert _form_values(response)["legal_name"] == ""
    typed = {
        "legal_name": "Épicerie Sociale",
        "trade_name": "L'Épi",
        "address": "1 rue Haxo",
        "postcode": "38000",
        "city": "Grenoble",
        "commune_code": "38185",
        "mcc": "5411",
    }
    response = client.post("/shop/register/details/", {**typed, **DETAILS})
    assert response.status_code == 302
    assert Merchant.objects.get(siret=number).legal_name == "Épicerie Sociale"


@pytest.mark.django_db
def test_la_postes_establishments_pass_the_siret_check_and_a_typo_does_not(client, settings):
    settings.SIRENE_API_KEY = ""
    assert client.post("/shop/register/", {"siret": "35600000000015"}).status_code == 302
    response = client.post("/shop/register/", {"siret": "12345678901234"})
    assert response.status_code == 400
    assert response.context["form"].errors["siret"]


@pytest.mark.django_db
def test_bad_bank_details_register_nothing(client, settings):
    settings.SIRENE_API_KEY = ""
    number = siret(82_003)
    client.post("/shop/register/", {"siret": number})
    typed = {
        "legal_name": "X",
        "trade_name": "X",
        "address": "1 rue",
        "postcode": "38000",
        "city": "Grenoble",
        "mcc": "5411",
    }
    response = client.post(
        "/shop/register/details/",
        {**typed, **DETAILS, "iban": "FR76 3000 6000 0112 3456 7890 188", "bic": "NOTABIC"},
    )
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert set(errors) >= {"iban", "bic"}
    assert not Merchant.objects.filter(siret=number).exists()
    assert not ShopMember.objects.exists()


@pytest.mark.django_db
def test_a_siret_already_registered_is_refused(client, owner):
    response = client.post("/shop/register/", {"siret": owner.merchant.siret})
    assert response.status_code == 400


@pytest.mark.django_db
def test_the_owner_is_told_by_email_when_an_operator_approves_the_shop(
    client, operator, django_capture_on_commit_callbacks
):
    from tests.shop.conftest import make_shop

    owner = make_shop(approved=False)
    client.force_login(operator)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/merchants/merchant/",
            {"action": "approve", "_selected_action": [owner.merchant.pk]},
        )
    assert response.status_code == 302
    owner.merchant.refresh_from_db()
    assert owner.merchant.status == Merchant.Status.APPROVED
    assert [m.to for m in mail.outbox] == [[owner.email]]
    assert owner.merchant.trade_name in mail.outbox[0].subject
    # Approving again tells nobody twice.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/admin/merchants/merchant/",
            {"action": "approve", "_selected_action": [owner.merchant.pk]},
        )
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_a_shop_with_a_card_terminal_gives_its_acceptor_ids_and_reads_them_on_its_page(
    client, settings
):
    settings.SIRENE_API_KEY = ""
    number = siret(82_004)
    client.post("/shop/register/", {"siret": number})
    response = client.post(
        "/shop/register/details/",
        {**TYPED, **DETAILS, "network_id": "123456789012345", "terminal_id": "T0012345"},
    )
    assert response.status_code == 302
    merchant = Merchant.objects.get(siret=number)
    acceptor = merchant.card_acceptors.get()
    assert (acceptor.network_id, acceptor.terminal_id, acceptor.how) == (
        "123456789012345",
        "T0012345",
        "onboarding",
    )
    merchant_approve(merchant=merchant)
    page = signed_in(ShopMember.objects.get(merchant=merchant)).get("/shop/shop/")
    assert "123456789012345 / T0012345" in page.content.decode()


@pytest.mark.django_db
def test_card_acceptor_ids_of_another_shop_or_a_terminal_alone_register_nothing(client, settings):
    settings.SIRENE_API_KEY = ""
    other = make_shop()
    card_acceptor_add(merchant=other.merchant, network_id="999888777", how="admin")
    for number, card, field in (
        (siret(82_005), {"network_id": "999888777"}, "network_id"),
        (siret(82_006), {"terminal_id": "T0012345"}, "terminal_id"),
        (siret(82_007), {"network_id": "12-34"}, "network_id"),
    ):
        client.post("/shop/register/", {"siret": number})
        response = client.post("/shop/register/details/", {**TYPED, **DETAILS, **card})
        assert response.status_code == 400, card
        assert field in response.context["form"].errors, response.context["form"].errors
        assert not Merchant.objects.filter(siret=number).exists()
    assert ShopMember.objects.count() == 1
