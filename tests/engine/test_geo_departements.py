"""Département from postcode and commune code, time zones, distances."""

import pytest

from engine import geo
from engine.request import MerchantPlace


@pytest.mark.parametrize(
    ("postcode", "expected"),
    [
        ("38000", "38"),  # Grenoble
        ("01000", "01"),  # Bourg-en-Bresse: the leading zero is kept
        ("75001", "75"),
        ("38042", "38"),  # a CEDEX code still starts with its département
        # Corsica: 200xx-201xx Corse-du-Sud, 202xx and 206xx Haute-Corse (La Poste's data)
        ("20000", "2A"),  # Ajaccio
        ("20090", "2A"),  # Ajaccio
        ("20137", "2A"),  # Porto-Vecchio
        ("20167", "2A"),  # Mezzavia, Afa, Alata...: the last shared Ajaccio-area code
        ("20190", "2A"),  # the highest Corse-du-Sud code
        ("20200", "2B"),  # Bastia
        ("20290", "2B"),  # Borgo
        ("20600", "2B"),  # Bastia, Furiani
        ("20620", "2B"),  # Biguglia
        # Overseas: the first three digits
        ("97110", "971"),  # Pointe-à-Pitre
        ("97200", "972"),  # Fort-de-France
        ("97300", "973"),  # Cayenne
        ("97400", "974"),  # Saint-Denis
        ("97600", "976"),  # Mamoudzou
        ("97500", "975"),  # Saint-Pierre-et-Miquelon (a collectivity, with its own code)
        # Saint-Barthélemy and Saint-Martin kept Guadeloupe's postcodes when they left it
        ("97133", "977"),
        ("97150", "978"),
        ("98000", None),  # Monaco
        ("00100", None),  # not a territory
        ("3800", None),
        ("38 000", None),
        ("ABCDE", None),
    ],
)
def test_departement_from_postcode(postcode, expected):
    assert geo.departement_from_postcode(postcode) == expected


@pytest.mark.parametrize(
    ("commune", "expected"),
    [
        ("38185", "38"),  # Grenoble
        ("2A004", "2A"),  # Ajaccio
        ("2B033", "2B"),  # Bastia
        ("2a004", "2A"),
        ("97105", "971"),  # Basse-Terre
        ("97411", "974"),  # Saint-Denis de La Réunion
        ("97701", "977"),  # Saint-Barthélemy
        ("97801", "978"),  # Saint-Martin
        ("20004", None),  # there is no département 20 since 1976
        ("2C004", None),
        ("9710", None),
    ],
)
def test_departement_from_commune(commune, expected):
    assert geo.departement_from_commune(commune) == expected


def test_there_are_101_departements_with_corsica_split_and_five_overseas():
    assert len(geo.DEPARTEMENTS) == 101
    assert {"2A", "2B", "971", "972", "973", "974", "976"} <= geo.DEPARTEMENTS.keys()
    assert "20" not in geo.DEPARTEMENTS
    assert "975" not in geo.DEPARTEMENTS  # a collectivity, not a département


def test_territory_label_names_the_place_and_its_number():
    assert geo.territory_label("38") == "Isère (38)"
    assert geo.territory_label("2A") == "Corse-du-Sud (2A)"
    assert geo.territory_label("977") == "Saint-Barthélemy (977)"


def _place(**kwargs):
    return MerchantPlace(**{"name": "Shop", "mcc": "5411", "country": "FR", **kwargs})


def test_commune_code_wins_over_postcode():
    # Some border communes of Alpes-de-Haute-Provence (04) get their mail through a
    # Hautes-Alpes post office, and so have a 05xxx postcode: the commune code is the truth.
    place = _place(postcode="05110", commune_code="04056")
    assert place.departement == "04"


def test_postcode_of_a_shop_abroad_gives_no_departement():
    assert _place(country="DE", postcode="38000").departement is None


def test_overseas_iso_country_code_is_french():
    assert _place(country="RE", postcode="97400").departement == "974"


def test_no_location_gives_no_departement():
    assert _place().departement is None
    assert not _place().has_location


@pytest.mark.parametrize(
    ("departement", "zone"),
    [
        ("38", "Europe/Paris"),
        ("2A", "Europe/Paris"),
        (None, "Europe/Paris"),
        ("974", "Indian/Reunion"),
        ("971", "America/Guadeloupe"),
        ("978", "America/Marigot"),
    ],
)
def test_local_time_zone(departement, zone):
    assert geo.local_time_zone(departement).key == zone


def test_haversine_paris_to_lyon():
    # Notre-Dame de Paris to Lyon's Place Bellecour: about 392 km as the crow flies.
    assert geo.haversine_km(48.8530, 2.3499, 45.7578, 4.8320) == pytest.approx(392, abs=2)


def test_haversine_is_zero_on_the_spot():
    assert geo.haversine_km(45.19, 5.72, 45.19, 5.72) == 0
