import re

import pytest
from django.contrib.auth import get_user_model

from merchants.models import ApiKey, Merchant
from merchants.services import merchant_flag
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

    response = operator_client.post(
        "/admin/merchants/merchant/",
        {"action": "create_api_key", "_selected_action": [merchant.pk]},
    )

    key = ApiKey.objects.get(merchant=merchant)
    secret = re.search(r"<code>(sk_live_[\w-]+)</code>", response.content.decode())[1]
    assert ApiKey.digest_of(secret) == key.digest
    assert secret not in (key.digest, key.prefix)
    page = operator_client.get(f"/admin/merchants/merchant/{merchant.pk}/change/")
    assert secret not in page.content.decode()


def test_a_key_created_in_the_admin_travels_in_no_cookie_and_no_cache(operator_client):
    merchant = make_merchant()

    response = operator_client.post(
        "/admin/merchants/merchant/",
        {"action": "create_api_key", "_selected_action": [merchant.pk]},
    )
    following = operator_client.get("/admin/merchants/merchant/")

    secret = re.search(r"<code>(sk_live_[\w-]+)</code>", response.content.decode())[1]
    assert "no-store" in response["Cache-Control"]
    for answer in (response, following):
        assert not [c for c in answer.cookies.values() if secret in c.OutputString()]
        assert secret not in str(answer.cookies)
    assert secret not in following.content.decode()


def test_the_admin_refuses_a_key_beyond_the_cap_and_says_so(operator_client, settings):
    settings.MERCHANT_API_KEYS_MAX = 1
    merchant = make_merchant()
    act(operator_client, "create_api_key", merchant)

    response = act(operator_client, "create_api_key", merchant)

    assert merchant.api_keys.count() == 1
    assert "errornote" in response.content.decode()


def test_an_operator_sees_and_clears_a_review_flag(operator_client):
    merchant = make_merchant()
    merchant_flag(merchant=merchant, reason="sent 20 wrong payment codes within 3600 seconds")

    flagged = operator_client.get("/admin/merchants/merchant/?flagged_at__isnull=False")
    act(operator_client, "unflag", merchant)

    assert merchant.trade_name in flagged.content.decode()
    merchant.refresh_from_db()
    assert (merchant.flagged_at, merchant.flag_reason) == (None, "")


def test_an_operator_registers_a_merchant_with_its_payable_account(operator_client):
    response = operator_client.post(
        "/admin/merchants/merchant/add/",
        {
            "siret": siret(77_777), "legal_name": "Boulangerie SARL", "trade_name": "Boulangerie",
            "mcc": "5462", "address": "1 rue", "postcode": "38000", "city": "Grenoble",
            "commune_code": "38185", "country": "FR",
            "api_keys-TOTAL_FORMS": 0, "api_keys-INITIAL_FORMS": 0,
            "card_acceptors-TOTAL_FORMS": 0, "card_acceptors-INITIAL_FORMS": 0,
        },
    )  # fmt: skip
    assert response.status_code == 302, response.content[:2000]
    merchant = Merchant.objects.get(trade_name="Boulangerie")
    assert merchant.payable_account.kind == "merchant_payable"
    assert merchant.status == Merchant.Status.PENDING
