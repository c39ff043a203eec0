"""The company register's client, against a local fake API Sirene (its JSON format)."""

from merchants.sirene import SireneClient, sirene_client
from tests.factories import siret
from tests.shop.conftest import SIRENE_KEY, sirene_establishment


def test_an_establishment_is_read_from_the_register(sirene):
    number = siret(81_001)
    sirene.known[number] = sirene_establishment(number)
    found = sirene_client().establishment(number)
    assert found.siret == number
    assert found.legal_name == "LA FOURNEE DU VIEUX TEMPLE"
    assert found.trade_name == "AU BON PAIN"
    assert found.address == "4 RUE DU VIEUX TEMPLE"
    assert (found.postcode, found.city, found.commune_code) == ("38000", "GRENOBLE", "38185")
    assert found.naf == "47.24Z"  # the establishment's activity, not the company's
    assert found.active
    assert sirene.requests == [(f"/siret/{number}", SIRENE_KEY)]


def test_a_sole_trader_is_named_by_their_name_and_a_shop_without_a_sign_by_its_company(sirene):
    number = siret(81_002)
    answer = sirene_establishment(number, enseigne1Etablissement=None)
    unit = answer["etablissement"]["uniteLegale"]
    del unit["denominationUniteLegale"]
    unit.update(prenom1UniteLegale="JEANNE", nomUniteLegale="MARTIN")
    sirene.known[number] = answer
    found = sirene_client().establishment(number)
    assert (found.legal_name, found.trade_name) == ("JEANNE MARTIN", "JEANNE MARTIN")


def test_an_unknown_siret_a_wrong_key_or_a_register_down_read_as_not_found(sirene, settings):
    assert sirene_client().establishment(siret(81_003)) is None  # 404
    assert SireneClient(base_url=sirene.url, api_key="wrong").establishment(siret(81_003)) is None
    down = SireneClient(base_url="http://127.0.0.1:9", api_key=SIRENE_KEY, deadline=2)
    assert down.establishment(siret(81_003)) is None


def test_without_a_key_there_is_no_register(settings):
    settings.SIRENE_API_KEY = ""
    assert sirene_client() is None
