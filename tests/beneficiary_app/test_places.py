import pytest

from tests.beneficiary_app.conftest import FOOD_IN_ISERE, error_code
from tests.factories import make_allocation, make_merchant, make_program

ECHIROLLES = {"lat": 45.1436, "lon": 5.7186}


def shop(name: str, **fields):
    return make_merchant(trade_name=name, **fields)


@pytest.fixture
def shops(db):
    return {
        "grenoble": shop("Épicerie Grenoble"),  # 38000, Grenoble centre
        "voiron": shop(
            "Épicerie Voiron",
            postcode="38500",
            city="Voiron",
            commune_code="38563",
            latitude="45.36440",
            longitude="5.58890",
        ),
        "echirolles": shop(
            "Épicerie Échirolles",
            postcode="38130",
            city="Échirolles",
            commune_code="38151",
            latitude="45.14600",
            longitude="5.71600",
        ),
        "no_position": shop("Épicerie sans position", latitude=None, longitude=None),
        # Refused by the food-in-Isère rules, or not approved:
        "bar": shop("Bar du Centre", mcc="5813"),
        "lyon": shop(
            "Épicerie Lyon",
            postcode="69001",
            city="Lyon",
            commune_code="69381",
            latitude="45.76700",
            longitude="4.83400",
        ),
        "pending": shop("Épicerie en attente", approved=False),
    }


@pytest.fixture
def pocket(beneficiary):
    program = make_program(rules=FOOD_IN_ISERE)
    return make_allocation(program=program, beneficiary=beneficiary).pocket


def names(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [place["name"] for place in response.json()["results"]]


def test_merchants_that_accept_the_pocket_nearest_first(api, pocket, shops):
    response = api.read(f"/pockets/{pocket.pk}/merchants", **ECHIROLLES)

    assert names(response) == [
        "Épicerie Échirolles",
        "Épicerie Grenoble",
        "Épicerie Voiron",
        "Épicerie sans position",
    ]
    distances = [place["distance_km"] for place in response.json()["results"]]
    assert distances[0] < 1 < distances[1] < 6 < 25 < distances[2] < 28
    assert distances[3] is None


def test_a_place_has_its_category_and_address(api, api_en, pocket, shops):
    [place, *_] = api_en.read(f"/pockets/{pocket.pk}/merchants", **ECHIROLLES).json()["results"]

    assert place == {
        "id": shops["echirolles"].pk,
        "name": "Épicerie Échirolles",
        "category": "food shops",
        "address": "12 rue de la République",
        "postcode": "38130",
        "city": "Échirolles",
        "latitude": 45.146,
        "longitude": 5.716,
        "distance_km": place["distance_km"],
    }
    french = api.read(f"/pockets/{pocket.pk}/merchants", **ECHIROLLES).json()["results"][0]
    assert french["category"] == "commerces alimentaires"


def test_with_a_postcode_the_shops_come_nearest_first_with_their_distance(api, pocket, shops):
    """From where the postcode is (its merchants' mean position: Voiron's shop here)."""
    response = api.read(f"/pockets/{pocket.pk}/merchants", postcode="38500")

    assert names(response) == [
        "Épicerie Voiron",
        "Épicerie Grenoble",
        "Épicerie Échirolles",
        "Épicerie sans position",
    ]
    body = response.json()
    distances = [place["distance_km"] for place in body["results"]]
    assert distances[0] == 0 < 20 < distances[1] < distances[2] < 30
    assert distances[3] is None
    assert body["origin"] == {"latitude": 45.3644, "longitude": 5.5889}


def test_a_postcode_with_no_shop_of_ours_is_placed_by_its_communes(api, pocket, shops):
    """38100 is Grenoble's other postcode: no shop of the test has it, but its commune
    (38185) has some, and their position places it."""
    response = api.read(f"/pockets/{pocket.pk}/merchants", postcode="38100")

    assert names(response)[0] == "Épicerie Grenoble"
    assert response.json()["origin"] is not None
    assert response.json()["results"][0]["distance_km"] < 1


def test_a_postcode_whose_place_is_unknown_lists_its_departements_shops_first(api, pocket, shops):
    response = api.read(f"/pockets/{pocket.pk}/merchants", postcode="38700")

    assert response.json()["origin"] is None
    assert {place["distance_km"] for place in response.json()["results"]} == {None}
    assert "Épicerie Lyon" not in names(response)


def test_without_a_place_the_beneficiarys_postcode_is_used(api, pocket, shops):
    response = api.read(f"/pockets/{pocket.pk}/merchants")  # the beneficiary lives in 38000

    assert names(response)[:2] == ["Épicerie Grenoble", "Épicerie Échirolles"]
    assert response.json()["results"][0]["distance_km"] == 0


def test_a_merchant_denied_by_the_aid_is_not_listed(api, beneficiary, shops):
    rules = {"merchants": {"deny": [shops["grenoble"].pk]}}
    pocket = make_allocation(beneficiary=beneficiary, rules=rules).pocket

    listed = names(api.read(f"/pockets/{pocket.pk}/merchants", limit=100))

    assert "Épicerie Grenoble" not in listed
    assert {"Épicerie Lyon", "Bar du Centre"} <= set(listed)
    assert "Épicerie en attente" not in listed


def test_an_allow_list_lists_only_its_merchants(api, beneficiary, shops):
    rules = {"merchants": {"allow": [shops["voiron"].pk, shops["lyon"].pk]}}
    pocket = make_allocation(beneficiary=beneficiary, rules=rules).pocket

    assert names(api.read(f"/pockets/{pocket.pk}/merchants")) == [
        "Épicerie Voiron",
        "Épicerie Lyon",
    ]


def test_the_list_is_paginated(api, pocket, shops):
    body = api.read(f"/pockets/{pocket.pk}/merchants", limit=1, **ECHIROLLES).json()

    assert body["count"] == 4
    assert len(body["results"]) == 1
    assert "offset=1" in body["next"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lat": 95, "lon": 5}, "lat"),
        ({"lat": "nan", "lon": 5}, "lat"),
        ({"lat": 45.1}, "lat"),
        ({"postcode": "3800"}, "postcode"),
    ],
)
def test_a_bad_place_is_refused(api, pocket, params, field):
    response = api.read(f"/pockets/{pocket.pk}/merchants", **params)

    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert error_code(response) == "invalid_request"
