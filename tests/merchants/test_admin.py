import pytest
from django.contrib.auth import get_user_model

from merchants.models import ApiKey, Merchant
from tests.factories import make_merchant, siret

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator_client(client):
    operator = get_user_model().objects.create_superuser("operator", "op@example.org", "pw")
    client.force_login(operator)
    return client


def act(client, action, merchant):
    return client.post(
        "/admin/merchants/merchant/",
        {"action": action, "_selected_action": [merchant.pk]},
        follow=True,
    )


def test_an_operator_approves_then_suspends_a_merchant(operator_client):
    merchant = make_merchant(approved=False)
    act(operator_client, "approve", merchant)
    merchant.refresh_from_db()
    assert merchant.status == Merchant.Status.APPROVED
    act(operator_client, "suspend", merchant)
    merchant.refresh_from_db()
    assert merchant.status == Merchant.Status.SUSPENDED


def test_a_key_created_in_the_admin_is_shown_once_and_stored_hashed(operator_client):
    merchant = make_merchant()
    response = act(operator_client, "create_api_key", merchant)
    key = ApiKey.objects.get(merchant=merchant)
    shown = [str(m) for m in response.context["messages"]]
    secret = next(m for m in shown if key.prefix in m).split()[-1]
    assert ApiKey.digest_of(secret) == key.digest
    assert secret not in (key.digest, key.prefix)
    page = operator_client.get(f"/admin/merchants/merchant/{merchant.pk}/change/")
    assert secret not in page.content.decode()


def test_an_operator_registers_a_merchant_with_its_payable_account(operator_client):
    response = operator_client.post(
        "/admin/merchants/merchant/add/",
        {
            "siret": siret(77_777), "legal_name": "Boulangerie SARL", "trade_name": "Boulangerie",
            "mcc": "5462", "address": "1 rue", "postcode": "38000", "city": "Grenoble",
            "commune_code": "38185", "country": "FR",
            "api_keys-TOTAL_FORMS": 0, "api_keys-INITIAL_FORMS": 0,
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content[:2000]
    merchant = Merchant.objects.get(trade_name="Boulangerie")
    assert merchant.payable_account.kind == "merchant_payable"
    assert merchant.status == Merchant.Status.PENDING
