"""Card acceptors given at onboarding (the application API) and in the admin, and the
operator's queue of unknown acceptors with its "this is merchant X"."""

import pytest
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator

from merchants.acceptors import (
    CardAcceptorTaken,
    card_acceptor_add,
    card_acceptor_merchant,
    unknown_card_acceptor_count,
)
from merchants.models import CardAcceptor, Merchant, UnknownCardAcceptor
from tests.api_clients import IdempotentClient
from tests.factories import make_merchant, make_staff, siret
from tests.funders.conftest import client_for

pytestmark = pytest.mark.django_db

APPLY = "/api/merchant/v1/applications"


def application(**fields):
    return {
        "siret": siret(91_001),
        "legal_name": "Épicerie du Vieux Temple SAS",
        "trade_name": "Épicerie du Vieux Temple",
        "mcc": "5411",
        "address": "4 rue du Vieux Temple",
        "postcode": "38000",
        "city": "Grenoble",
        **fields,
    }


def apply(**fields):
    return IdempotentClient().post(APPLY, application(**fields), format="json")


def test_an_application_registers_its_card_acceptors():
    acceptors = [{"network_id": "493051000123456"}, {"network_id": "4930510", "terminal_id": "T42"}]

    response = apply(card_acceptors=acceptors)

    assert response.status_code == 201, response.content
    merchant = Merchant.objects.get(pk=response.json()["id"])
    assert sorted(merchant.card_acceptors.values_list("network_id", "terminal_id", "how")) == [
        ("4930510", "T42", "onboarding"),
        ("493051000123456", "", "onboarding"),
    ]


@pytest.mark.parametrize(
    "acceptors",
    [
        [{"network_id": ""}],
        [{"network_id": "4930 5100"}],
        [{"network_id": "4" * 36}],
        [{"network_id": "493051", "terminal_id": "T-1"}],
        [{"terminal_id": "T1"}],
        [{"network_id": "493051"}, {"network_id": "493051"}],
        "493051",
    ],
)
def test_an_application_with_a_malformed_card_acceptor_is_a_400(acceptors):
    response = apply(card_acceptors=acceptors)

    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_request"
    assert response.json()["error"]["field"].startswith("card_acceptors")
    assert not Merchant.objects.exists()
    assert not CardAcceptor.objects.exists()


@pytest.mark.parametrize(
    ("theirs", "ours"),
    [
        ("", ""),  # the same network id, every terminal
        ("", "T1"),  # one terminal of a network id that is all theirs
        ("T1", ""),  # every terminal, one of which is theirs
        ("T1", "T1"),
    ],
)
def test_an_application_with_another_merchants_card_acceptor_is_a_409(theirs, ours):
    other = make_merchant()
    card_acceptor_add(merchant=other, network_id="493051", terminal_id=theirs, how="admin")

    response = apply(card_acceptors=[{"network_id": "493051", "terminal_id": ours}])

    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "card_acceptor_taken"
    assert Merchant.objects.get() == other  # the application left nothing behind
    assert CardAcceptor.objects.count() == 1


def test_two_merchants_share_a_network_id_terminal_by_terminal():
    other = make_merchant()
    card_acceptor_add(merchant=other, network_id="493051", terminal_id="T1", how="admin")

    response = apply(card_acceptors=[{"network_id": "493051", "terminal_id": "T2"}])

    assert response.status_code == 201, response.content
    ours = Merchant.objects.get(pk=response.json()["id"])
    assert card_acceptor_merchant(network_id="493051", terminal_id="T1") == other
    assert card_acceptor_merchant(network_id="493051", terminal_id="T2") == ours
    assert card_acceptor_merchant(network_id="493051", terminal_id="T3") is None


def test_a_terminals_own_acceptor_wins_over_the_one_of_every_terminal():
    shop, kiosk = make_merchant(), make_merchant()
    card_acceptor_add(merchant=shop, network_id="493051", how="admin")
    CardAcceptor.objects.create(merchant=kiosk, network_id="493051", terminal_id="K1", how="admin")

    assert card_acceptor_merchant(network_id="493051", terminal_id="K1") == kiosk
    assert card_acceptor_merchant(network_id="493051", terminal_id="T9") == shop
    assert card_acceptor_merchant(network_id="493051", terminal_id=None) == shop


def test_adding_ones_own_acceptor_again_returns_it():
    merchant = make_merchant()
    first = card_acceptor_add(merchant=merchant, network_id="493051", how="admin")

    assert card_acceptor_add(merchant=merchant, network_id="493051", how="queue") == first
    with pytest.raises(CardAcceptorTaken):
        card_acceptor_add(merchant=make_merchant(), network_id="493051", how="admin")


def test_the_schema_documents_card_acceptors():
    schema = SchemaGenerator(urlconf="merchant_api.urls").get_schema(request=None, public=True)
    application_schema = schema["components"]["schemas"]["MerchantApplicationInputRequest"]
    assert "card_acceptors" in application_schema["properties"]
    assert "card_acceptors" in str(schema["paths"])


# The admin


def merchant_form(client, merchant, **extra):
    url = reverse("admin:merchants_merchant_change", args=[merchant.pk])
    form = client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    for prefix in ("card_acceptors", "api_keys"):
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    return url, data | extra


def test_an_operator_adds_a_card_acceptor_in_the_merchants_page(admin_client, admin_user):
    merchant = make_merchant()
    url, data = merchant_form(admin_client, merchant)
    data |= {
        "card_acceptors-TOTAL_FORMS": "1",
        "card_acceptors-0-network_id": "493051",
        "card_acceptors-0-terminal_id": "",
    }

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context["errors"]
    acceptor = CardAcceptor.objects.get()
    assert (acceptor.merchant, acceptor.how, acceptor.created_by) == (merchant, "admin", admin_user)
    assert "493051" in admin_client.get(url).content.decode()


def test_an_operator_registers_a_merchant_with_its_card_acceptor(admin_client):
    response = admin_client.post(
        reverse("admin:merchants_merchant_add"),
        {
            "siret": siret(77_778), "legal_name": "Boulangerie SARL", "trade_name": "Boulangerie",
            "mcc": "5462", "address": "1 rue", "postcode": "38000", "city": "Grenoble",
            "country": "FR", "api_keys-TOTAL_FORMS": 0, "api_keys-INITIAL_FORMS": 0,
            "card_acceptors-TOTAL_FORMS": 1, "card_acceptors-INITIAL_FORMS": 0,
            "card_acceptors-0-network_id": "493051", "card_acceptors-0-terminal_id": "T1",
        },
    )  # fmt: skip

    assert response.status_code == 302, response.content[:2000]
    acceptor = CardAcceptor.objects.get()
    assert (acceptor.merchant.trade_name, acceptor.terminal_id, acceptor.how) == (
        "Boulangerie",
        "T1",
        "admin",
    )


def test_the_merchants_page_refuses_another_merchants_card_acceptor(admin_client):
    card_acceptor_add(merchant=make_merchant(), network_id="493051", how="admin")
    merchant = make_merchant()
    url, data = merchant_form(admin_client, merchant)
    data |= {
        "card_acceptors-TOTAL_FORMS": "1",
        "card_acceptors-0-network_id": "493051",
        "card_acceptors-0-terminal_id": "T1",
    }

    response = admin_client.post(url, data)

    assert response.status_code == 200
    (errors,) = response.context["inline_admin_formsets"][0].formset.errors
    assert errors.as_data()["network_id"][0].code == "card_acceptor_taken"
    assert not merchant.card_acceptors.exists()


# The queue


def count(network_id="493051", terminal_id="T1", amount=1_000, **shop):
    unknown_card_acceptor_count(
        network_id=network_id,
        terminal_id=terminal_id,
        currency="EUR",
        amount=amount,
        name=shop.get("name", "EPICERIE DU COURS"),
        city="GRENOBLE",
        postcode="38000",
        mcc="5411",
    )


def test_the_queue_counts_and_sums_each_acceptor():
    count(amount=1_000)
    count(amount=250, name="EPICERIE DU COURS SARL")
    count(terminal_id="T2", amount=99)

    first, second = UnknownCardAcceptor.objects.order_by("terminal_id")
    assert (first.count, first.amount, first.name) == (2, 1_250, "EPICERIE DU COURS SARL")
    assert (second.count, second.amount) == (1, 99)


def test_an_id_no_acceptor_could_have_is_not_queued():
    count(network_id="x" * 40)
    count(network_id="49 30")

    assert not UnknownCardAcceptor.objects.exists()


def resolve(client, unknown, merchant, **extra):
    url = reverse("admin:merchants_unknowncardacceptor_change", args=[unknown.pk])
    return client.post(url, {"merchant": merchant.pk, **extra})


def test_this_is_merchant_x_makes_every_terminal_of_the_id_the_merchants(admin_client, admin_user):
    count(terminal_id="T1")
    count(terminal_id="T2")
    count(network_id="777")
    merchant = make_merchant()
    unknown = UnknownCardAcceptor.objects.get(network_id="493051", terminal_id="T1")

    response = resolve(admin_client, unknown, merchant)

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:merchants_unknowncardacceptor_changelist")
    acceptor = CardAcceptor.objects.get()
    assert (acceptor.network_id, acceptor.terminal_id, acceptor.how, acceptor.created_by) == (
        "493051",
        "",
        "queue",
        admin_user,
    )
    assert list(UnknownCardAcceptor.objects.values_list("network_id", flat=True)) == ["777"]
    assert card_acceptor_merchant(network_id="493051", terminal_id="T2") == merchant


def test_this_is_merchant_x_for_one_terminal_only(admin_client):
    count(terminal_id="T1")
    count(terminal_id="T2")
    merchant = make_merchant()

    resolve(
        admin_client, UnknownCardAcceptor.objects.get(terminal_id="T1"), merchant,
        this_terminal_only="on",
    )  # fmt: skip

    assert CardAcceptor.objects.get().terminal_id == "T1"
    assert list(UnknownCardAcceptor.objects.values_list("terminal_id", flat=True)) == ["T2"]


def test_this_is_merchant_x_refuses_another_merchants_acceptor(admin_client):
    card_acceptor_add(merchant=make_merchant(), network_id="493051", how="admin")
    count()
    unknown = UnknownCardAcceptor.objects.get()

    response = resolve(admin_client, unknown, make_merchant())

    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors().as_data()
    assert [error.code for error in errors] == ["card_acceptor_taken"]
    assert UnknownCardAcceptor.objects.filter(pk=unknown.pk).exists()
    assert CardAcceptor.objects.count() == 1


def test_the_queue_lists_the_shop_and_offers_the_merchant_autocomplete(admin_client):
    count(amount=1_250)
    unknown = UnknownCardAcceptor.objects.get()
    merchant = make_merchant(trade_name="Épicerie du Cours")

    listing = admin_client.get(reverse("admin:merchants_unknowncardacceptor_changelist"))
    page = admin_client.get(
        reverse("admin:merchants_unknowncardacceptor_change", args=[unknown.pk])
    )
    found = admin_client.get(
        reverse("admin:autocomplete"),
        {
            "app_label": "merchants",
            "model_name": "cardacceptor",
            "field_name": "merchant",
            "term": "Cours",
        },
    )

    html = listing.content.decode()
    assert "EPICERIE DU COURS" in html and "GRENOBLE" in html and "12,50" in html
    assert 'data-model-name="cardacceptor"' in page.content.decode()
    assert [r["id"] for r in found.json()["results"]] == [str(merchant.pk)]


@pytest.mark.parametrize("role", ["agent", "manager", "administrator"])
def test_funder_staff_never_see_the_queue(funder, role):
    count()
    unknown = UnknownCardAcceptor.objects.get()
    client = client_for(make_staff(funder=funder, role=role))

    assert client.get(reverse("admin:merchants_unknowncardacceptor_changelist")).status_code == 403
    change = reverse("admin:merchants_unknowncardacceptor_change", args=[unknown.pk])
    assert client.get(change).status_code == 403
    assert client.post(change, {"merchant": make_merchant().pk}).status_code == 403
    assert "unknowncardacceptor" not in client.get(reverse("admin:index")).content.decode()
    assert not CardAcceptor.objects.exists()
