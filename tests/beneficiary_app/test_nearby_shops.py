"""A payment refused because of the shop names, in the app, the nearest shops where the aid the
refusal names is accepted, with their distance from the shop that refused it.

The shops stand on the meridian of the refusing bar (5.73569° E), north of it: along a meridian
the great-circle distance is R·Δφ, with R = 6371.0088 km (engine.geo), so 0.004° is 444.78 m,
0.011° is 1,223.15 m, 0.020° is 2,223.90 m and 0.100° is 11,119.51 m."""

import pytest

from engine.request import MerchantPlace
from engine.rules import PocketRules
from merchants.payments import payment_authorize
from merchants.selectors import shops_nearby
from tests.factories import make_allocation, make_merchant, make_payment_code

FOOD_ONLY = {"categories": {"allow_groups": ["food"]}}
LONGITUDE = "5.73569"


def plain(text: str) -> str:
    return " ".join(text.replace("\u00a0", " ").split())


def north(name: str, latitude: str, **fields):
    return make_merchant(trade_name=name, latitude=latitude, longitude=LONGITUDE, **fields)


@pytest.fixture
def bar(db):
    """A bar in Grenoble: a food aid refuses it for its kind of shop."""
    return make_merchant(trade_name="Bar du Centre", mcc="5813", latitude="45.18756")


@pytest.fixture
def shops(db):
    return {
        "far": north("Épicerie des Alpes", "45.28756"),  # 11,120 m: fourth, not named
        "third": north("Supérette Berriat", "45.20756"),  # 2,224 m
        "first": north("Épicerie Nord", "45.19156"),  # 445 m
        "second": north("Marché Notre-Dame", "45.19856"),  # 1,223 m
        "no_position": make_merchant(
            trade_name="Épicerie sans position", latitude=None, longitude=None
        ),
        # Nearer, but refused by the aid or not approved:
        "other_bar": north("Bar des Halles", "45.18856", mcc="5813"),
        "pending": north("Épicerie en attente", "45.18806", approved=False),
    }


@pytest.fixture
def food_aid(beneficiary):
    return make_allocation(beneficiary=beneficiary, amount=10_000, rules=FOOD_ONLY).pocket


def pay(merchant, wallet, amount=1800):
    return payment_authorize(
        merchant=merchant, amount=amount, currency="EUR", payment_code=make_payment_code(wallet)
    )


def nearby(client, decision) -> dict:
    response = client.read(f"/history/{decision.reference}")
    assert response.status_code == 200, response.content
    return response.json()["nearby"]


def test_a_refusal_for_the_kind_of_shop_names_the_three_nearest_shops_that_accept_the_aid(
    api_en, beneficiary, food_aid, bar, shops
):
    refused = pay(bar, beneficiary.wallet)

    assert refused.reason == "merchant_category_not_allowed"
    answer = nearby(api_en, refused)
    assert [(shop["name"], shop["distance_m"]) for shop in answer["shops"]] == [
        ("Épicerie Nord", 445),
        ("Marché Notre-Dame", 1223),
        ("Supérette Berriat", 2224),
    ]
    assert plain(answer["message"]) == (
        "Where to use this aid near here: Épicerie Nord (445 m), "
        "Marché Notre-Dame (1.2 km), Supérette Berriat (2.2 km)."
    )


def test_each_shop_named_has_its_address_and_distance_in_words(
    api_en, beneficiary, food_aid, bar, shops
):
    answer = nearby(api_en, pay(bar, beneficiary.wallet))

    assert answer["shops"][1] == {
        "id": shops["second"].pk,
        "name": "Marché Notre-Dame",
        "address": "12 rue de la République",
        "postcode": "38000",
        "city": "Grenoble",
        "distance_m": 1223,
        "distance_display": "1.2\u00a0km",
    }


def test_the_shops_are_named_in_french(api, beneficiary, food_aid, bar, shops):
    answer = nearby(api, pay(bar, beneficiary.wallet))

    assert plain(answer["message"]) == (
        "Où utiliser cette aide près d\u2019ici : Épicerie Nord (445 m), "
        "Marché Notre-Dame (1,2 km), Supérette Berriat (2,2 km)."
    )
    assert answer["shops"][2]["distance_display"] == "2,2\u00a0km"


def test_an_aid_no_shop_accepts_says_so(api, api_en, beneficiary, bar, shops):
    pharmacy_only = {"categories": {"allow_mccs": ["5912"]}}
    make_allocation(beneficiary=beneficiary, amount=10_000, rules=pharmacy_only)

    refused = pay(bar, beneficiary.wallet)

    assert refused.reason == "merchant_category_not_allowed"
    assert nearby(api_en, refused) == {
        "message": "No shop accepts this aid at the moment.",
        "shops": [],
    }
    assert (
        nearby(api, refused)["message"]
        == "Aucun commerce n\u2019accepte cette aide pour le moment."
    )


def test_a_shop_outside_the_zone_names_the_shops_inside_it(api_en, beneficiary, shops):
    # A food aid of Savoie: the Grenoble shops are outside; one in Chambéry is the nearest.
    make_allocation(
        beneficiary=beneficiary,
        amount=10_000,
        rules={"categories": {"allow_groups": ["food"]}, "zone": {"departements": ["73"]}},
    )
    chambery = make_merchant(
        trade_name="Épicerie de Chambéry",
        postcode="73000",
        city="Chambéry",
        commune_code="73065",
        latitude="45.56646",
        longitude="5.92080",
    )

    refused = pay(shops["first"], beneficiary.wallet)

    assert refused.reason == "outside_zone"
    [shop] = nearby(api_en, refused)["shops"]
    assert shop["id"] == chambery.pk
    assert 40_000 < shop["distance_m"] < 45_000


def test_a_refusal_that_another_shop_would_not_change_names_no_shop(
    api_en, beneficiary, food_aid, shops
):
    refused = pay(shops["first"], beneficiary.wallet, amount=20_000)  # more than the aid has

    assert refused.reason == "insufficient_funds"
    assert nearby(api_en, refused) is None


def test_without_the_shops_place_the_shops_of_its_departement_are_named_without_distance(
    api_en, beneficiary, food_aid, shops
):
    bar_without_position = make_merchant(
        trade_name="Bar", mcc="5813", latitude=None, longitude=None
    )
    make_merchant(
        trade_name="Épicerie Échirolles",
        postcode="38130",
        city="Échirolles",
        commune_code="38151",
    )
    make_merchant(trade_name="Épicerie Lyon", postcode="69001", city="Lyon", commune_code="69381")

    answer = nearby(api_en, pay(bar_without_position, beneficiary.wallet))

    # The same postcode (38000) first, by name; Échirolles is in Isère too; Lyon is not.
    assert [(shop["name"], shop["distance_m"]) for shop in answer["shops"]] == [
        ("Épicerie des Alpes", None),
        ("Épicerie Nord", None),
        ("Épicerie sans position", None),
    ]
    assert plain(answer["message"]) == (
        "Where to use this aid near here: Épicerie des Alpes, Épicerie Nord, "
        "Épicerie sans position."
    )


def test_a_card_shop_known_only_by_its_postcode_gets_the_shops_of_its_departement(db):
    # What a card network tells of an unmatched shop: its postcode, no coordinates.
    echirolles = make_merchant(
        trade_name="Épicerie Échirolles",
        postcode="38130",
        city="Échirolles",
        commune_code="38151",
    )
    make_merchant(trade_name="Épicerie Lyon", postcode="69001", city="Lyon", commune_code="69381")
    rules = PocketRules.from_dict(FOOD_ONLY)
    place = MerchantPlace(name="CAFE DE LA GARE", mcc="5814", country="FR", postcode="38130")

    found = shops_nearby(rules=rules, place=place)

    assert [(shop.merchant, shop.distance_m) for shop in found.shops] == [(echirolles, None)]
    assert found.accepting == 2


def test_without_any_place_the_beneficiarys_departement_is_used(db):
    grenoble = make_merchant(trade_name="Épicerie Grenoble")
    make_merchant(trade_name="Épicerie Lyon", postcode="69001", city="Lyon", commune_code="69381")
    rules = PocketRules.from_dict(FOOD_ONLY)
    place = MerchantPlace(name="SHOP", mcc="5814", country="FR")

    found = shops_nearby(rules=rules, place=place, postcode="38100")

    assert [shop.merchant for shop in found.shops] == [grenoble]
    assert shops_nearby(rules=rules, place=place).shops == []
