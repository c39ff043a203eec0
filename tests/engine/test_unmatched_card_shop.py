"""Each place and merchant rule at a shop of ours (merchant_id set, as on the API channel or a
card payment matched to our merchant) and at a card shop we do not know (merchant_id None: the
card network gives its name, network id, category, country and postcode, nothing more)."""

import pytest
from django.utils import translation

from engine.request import MerchantPlace
from engine.rules import PocketRules, RulesError, check_merchant, check_zone

GRENOBLE = {"lat": 45.188, "lon": 5.724, "radius_km": 10}


def ours(**kwargs):
    """Our registered merchant in Grenoble: commune and coordinates known."""
    place = {"commune_code": "38185", "postcode": "38000", "latitude": 45.19, "longitude": 5.72}
    return MerchantPlace(
        **{"name": "Épicerie", "mcc": "5411", "country": "FR", "merchant_id": 12, **place, **kwargs}
    )


def card_shop(**kwargs):
    return MerchantPlace(
        **{"name": "EPICERIE", "mcc": "5411", "country": "FR", "postcode": "38000", **kwargs}
    )


def zone_verdict(zone, merchant):
    return check_zone(PocketRules.from_dict({"zone": zone}).zone, merchant)


def merchant_verdict(rule, merchant):
    return check_merchant(PocketRules.from_dict({"merchants": rule}).merchants, merchant)


def reason(verdict):
    return None if verdict.eligible else (verdict.reason, verdict.details.get("cause"))


OUTSIDE = ("outside_zone", None)
NOT_RECOGNISED_CIRCLE = ("merchant_not_recognised", "circle")


@pytest.mark.parametrize(
    ("zone", "merchant", "expected"),
    [
        # département: from the commune for our shop, from the postcode for a card shop
        ({"departements": ["38"]}, ours(), None),
        ({"departements": ["38"]}, card_shop(), None),
        ({"departements": ["38"]}, card_shop(postcode="73000"), OUTSIDE),
        # postcode prefix: the postcode, for both
        ({"postcode_prefixes": ["380"]}, ours(), None),
        ({"postcode_prefixes": ["380"]}, card_shop(), None),
        ({"postcode_prefixes": ["380"]}, card_shop(postcode="38400"), OUTSIDE),
        # commune: every commune of the card shop's postcode must be allowed
        ({"communes": ["38185"]}, ours(), None),
        ({"communes": ["38185"]}, card_shop(), None),  # 38000 is Grenoble only
        ({"communes": ["38185"]}, card_shop(postcode="38400"), OUTSIDE),
        ({"communes": ["38185"]}, card_shop(postcode="38042"), OUTSIDE),  # CEDEX: no commune
        ({"communes": ["38185"]}, card_shop(postcode="38000", country="DE"), OUTSIDE),
        # a city covers its arrondissements, an arrondissement covers only itself
        ({"communes": ["75056"]}, card_shop(postcode="75001"), None),
        ({"communes": ["75101"]}, card_shop(postcode="75001"), None),
        ({"communes": ["75102"]}, card_shop(postcode="75001"), OUTSIDE),
        ({"communes": ["13055"]}, ours(commune_code="13201", postcode="13001"), None),
        # circle: a card shop has no coordinates; we cannot tell, so we do not say "outside"
        ({"circles": [GRENOBLE]}, ours(), None),
        ({"circles": [GRENOBLE]}, ours(latitude=45.9, longitude=6.1), OUTSIDE),
        ({"circles": [GRENOBLE]}, card_shop(), NOT_RECOGNISED_CIRCLE),
        ({"circles": [GRENOBLE]}, card_shop(postcode="75001"), NOT_RECOGNISED_CIRCLE),
        # ... unless another part of the zone takes it in
        ({"circles": [GRENOBLE], "departements": ["38"]}, card_shop(), None),
        ({"circles": [GRENOBLE], "departements": ["73"]}, card_shop(), NOT_RECOGNISED_CIRCLE),
        # this département and its neighbours
        ({"departements_with_neighbours": ["73"]}, ours(), None),  # Isère touches Savoie
        ({"departements_with_neighbours": ["73"]}, card_shop(), None),
        ({"departements_with_neighbours": ["73"]}, card_shop(postcode="73000"), None),
        ({"departements_with_neighbours": ["73"]}, card_shop(postcode="75001"), OUTSIDE),
        ({"departements_with_neighbours": ["74"]}, card_shop(), OUTSIDE),  # not Isère's
        # Corsica: each other's only neighbour, never the mainland across the sea
        ({"departements_with_neighbours": ["2A"]}, card_shop(postcode="20200"), None),
        ({"departements_with_neighbours": ["2A"]}, card_shop(postcode="13001"), OUTSIDE),
        ({"departements_with_neighbours": ["06"]}, card_shop(postcode="20200"), OUTSIDE),
        # overseas: the département itself, no neighbour
        ({"departements_with_neighbours": ["971"]}, card_shop(postcode="97110"), None),
        ({"departements_with_neighbours": ["971"]}, card_shop(postcode="97200"), OUTSIDE),
        ({"departements_with_neighbours": ["971"]}, card_shop(postcode="97133"), OUTSIDE),
    ],
)
def test_zone_rule_at_our_shop_and_at_a_card_shop(zone, merchant, expected):
    assert reason(zone_verdict(zone, merchant)) == expected


def test_a_card_shop_outside_the_communes_gets_the_usual_details():
    verdict = zone_verdict({"communes": ["01001"]}, card_shop(postcode="01400"))
    assert verdict.reason == "outside_zone"
    assert verdict.details["communes"] == ["01001"]
    assert verdict.details["unknown_location"] is False


def test_a_card_shop_is_in_the_communes_only_when_every_commune_of_its_postcode_is():
    communes = ["01001", "01084", "01093", "01113", "01146", "01272", "01328", "01356", "01393"]
    assert not zone_verdict({"communes": communes}, card_shop(postcode="01400")).eligible
    assert zone_verdict({"communes": [*communes, "01412"]}, card_shop(postcode="01400")).eligible


def test_the_neighbours_refusal_names_them():
    verdict = zone_verdict({"departements_with_neighbours": ["73"]}, card_shop(postcode="75001"))
    assert verdict.details["departements_with_neighbours"] == ["73"]


NETWORK_ID = {"network_id": "1234567890"}
TABAC = {"name": "Tabac du Centre", "postcode": "38000"}
NOT_ACCEPTED = ("merchant_not_accepted", "denied")


@pytest.mark.parametrize(
    ("rule", "merchant", "expected"),
    [
        # allow list: our merchants only; a card shop we do not know is not recognised
        ({"allow": [12]}, ours(), None),
        ({"allow": [13]}, ours(), ("merchant_not_accepted", "not_listed")),
        ({"allow": [12]}, card_shop(), ("merchant_not_recognised", "allow_list")),
        # deny list by our id
        ({"deny": [12]}, ours(), NOT_ACCEPTED),
        ({"deny": [12]}, card_shop(), None),
        # by the card network's id, whether we know the shop or not
        ({"deny": [NETWORK_ID]}, card_shop(network_id="1234567890"), NOT_ACCEPTED),
        ({"deny": [NETWORK_ID]}, ours(network_id="1234567890"), NOT_ACCEPTED),
        ({"deny": [NETWORK_ID]}, card_shop(network_id="1234567891"), None),
        ({"deny": [NETWORK_ID]}, card_shop(), None),
        # by name and postcode, the name without case, accents, spaces nor punctuation
        ({"deny": [TABAC]}, card_shop(name="TABAC DU CENTRE"), NOT_ACCEPTED),
        ({"deny": [TABAC]}, card_shop(name="  tabac-du-centre "), NOT_ACCEPTED),
        (
            {"deny": [{**TABAC, "name": "Tabac du Centre Élysée"}]},
            card_shop(name="TABAC DU CENTRE ELYSEE"),
            NOT_ACCEPTED,
        ),
        ({"deny": [TABAC]}, ours(name="Tabac du Centre"), NOT_ACCEPTED),
        ({"deny": [TABAC]}, card_shop(name="TABAC DU CENTRE", postcode="38100"), None),
        ({"deny": [TABAC]}, card_shop(name="TABAC DE LA GARE"), None),
        ({"deny": [TABAC]}, card_shop(name="TABAC DU CENTRE", postcode=None), None),
        # a deny beats the allow list
        ({"allow": [12], "deny": [NETWORK_ID]}, ours(network_id="1234567890"), NOT_ACCEPTED),
        ({"allow": [12], "deny": [TABAC]}, card_shop(name="Tabac du centre"), NOT_ACCEPTED),
    ],
)
def test_merchant_rule_at_our_shop_and_at_a_card_shop(rule, merchant, expected):
    assert reason(merchant_verdict(rule, merchant)) == expected


@pytest.mark.parametrize(
    ("deny", "field"),
    [
        ([{"network_id": ""}], "merchants.deny[0].network_id"),
        ([{"network_id": 123}], "merchants.deny[0].network_id"),
        ([{"network_id": "1", "name": "X"}], "merchants.deny[0].name"),
        ([{"name": "Tabac"}], "merchants.deny[0].postcode"),
        ([{"name": "Tabac", "postcode": "380"}], "merchants.deny[0].postcode"),
        ([{"name": "Tabac", "postcode": 38000}], "merchants.deny[0].postcode"),
        ([7, {"name": "--", "postcode": "38000"}], "merchants.deny[1].name"),
        ([{"town": "Grenoble"}], "merchants.deny[0].town"),
        (["Tabac"], "merchants.deny[0]"),
    ],
)
def test_a_bad_deny_entry_points_at_its_field(deny, field):
    with pytest.raises(RulesError) as error:
        PocketRules.from_dict({"merchants": {"deny": deny}})
    assert error.value.field == field


def test_a_zone_of_neighbours_alone_is_a_zone():
    rule = PocketRules.from_dict({"zone": {"departements_with_neighbours": ["38"]}}).zone
    assert rule.covered_departements == {"38", "01", "05", "07", "26", "42", "69", "73"}


def test_a_zone_of_neighbours_names_real_departements():
    with pytest.raises(RulesError) as error:
        PocketRules.from_dict({"zone": {"departements_with_neighbours": ["38", "20"]}})
    assert error.value.field == "zone.departements_with_neighbours[1]"


def test_describe_neighbours_and_card_shops_denied():
    with translation.override("en"):
        described = PocketRules.from_dict(
            {
                "merchants": {"deny": [7, NETWORK_ID, TABAC]},
                "zone": {"departements": ["38"], "departements_with_neighbours": ["73", "974"]},
            }
        ).describe()
    assert described == [
        "Not in 3 shops excluded by the funder.",
        "Only in this area: Isère (38), Savoie (73) and its neighbouring départements, "
        "La Réunion (974).",
    ]
