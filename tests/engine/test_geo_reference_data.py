"""The reference data of the zone checks (engine/data/): it loads, and known facts hold."""

import pytest

from engine import geo


@pytest.mark.parametrize(
    ("postcode", "communes"),
    [
        ("38000", {"38185"}),  # Grenoble
        ("38100", {"38185"}),  # Grenoble's other postcode
        ("75001", {"75101"}),  # Paris by its arrondissements, as La Poste gives them
        ("13001", {"13201"}),
        ("69001", {"69381"}),
        ("20000", {"2A004"}),  # Ajaccio
        ("97133", {"97701"}),  # Saint-Barthélemy
        ("97150", {"97801"}),  # Saint-Martin
        ("97500", {"97501", "97502"}),  # Saint-Pierre-et-Miquelon: two communes
        ("98000", set()),  # Monaco is not in the table
        ("38042", set()),  # a CEDEX code serves no commune of its own
        ("3800", set()),
    ],
)
def test_communes_of_postcode(postcode, communes):
    assert geo.communes_of_postcode(postcode) == communes


def test_a_postcode_can_serve_several_communes_even_across_departements():
    assert len(geo.communes_of_postcode("01400")) == 10
    # 05110 serves communes of Hautes-Alpes and of Alpes-de-Haute-Provence
    departements = {geo.departement_from_commune(c) for c in geo.communes_of_postcode("05110")}
    assert departements == {"04", "05"}


def test_every_commune_of_the_table_is_in_a_known_territory():
    communes = set().union(*geo._postcode_communes().values())
    assert len(communes) > 34_000
    unknown = {code for code in communes if geo.departement_from_commune(code) is None}
    assert unknown == {"98901"}  # Clipperton, uninhabited, which geo has no territory for


@pytest.mark.parametrize(
    ("commune", "expected"),
    [
        ("75101", ("75101", "75056")),
        ("75120", ("75120", "75056")),
        ("13216", ("13216", "13055")),
        ("69389", ("69389", "69123")),
        ("75056", ("75056",)),
        ("38185", ("38185",)),
        ("2A004", ("2A004",)),
    ],
)
def test_commune_and_city(commune, expected):
    assert geo.commune_and_city(commune) == expected


@pytest.mark.parametrize(
    ("departement", "neighbours"),
    [
        ("2A", {"2B"}),  # Corsica: each other only, the sea is no border
        ("2B", {"2A"}),
        ("38", {"01", "05", "07", "26", "42", "69", "73"}),
        ("75", {"92", "93", "94"}),
        ("29", {"22", "56"}),
        ("06", {"04", "83"}),
        ("971", set()),  # overseas: none
        ("974", set()),
        ("976", set()),
        ("977", set()),
    ],
)
def test_departement_neighbours(departement, neighbours):
    assert geo.departement_neighbours(departement) == neighbours


def test_neighbours_are_mutual_and_metropolitan():
    table = geo._departement_neighbours()
    metropolitan = {code for code in geo.DEPARTEMENTS if len(code) == 2}
    assert set(table) == metropolitan
    for code, neighbours in table.items():
        assert neighbours <= metropolitan - {code}
        assert all(code in table[other] for other in neighbours), code
