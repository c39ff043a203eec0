from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from funders.services import allocation_revoke
from merchants.payments import payment_authorize
from tests.beneficiary_app.conftest import AppClient, error_code
from tests.factories import make_allocation, make_payment_code, make_program

PARIS = ZoneInfo("Europe/Paris")
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=PARIS)


def plain(text: str) -> str:
    """Text with French typography (no-break spaces, curly apostrophes) made plain."""
    text = text.replace("\u2019", "'")
    return " ".join(text.replace("\u00a0", " ").replace("\u202f", " ").split())


def test_a_pocket_shows_its_aid_funder_and_balances(api, api_en, food_pocket, card, grocer):
    payment_authorize(
        merchant=grocer,
        amount=1250,
        currency="EUR",
        payment_code=make_payment_code(card.wallet),
        idempotency_key="k1",
    )

    [pocket] = api.read("/pockets").json()["data"]

    program = food_pocket.allocation.program
    assert pocket["id"] == food_pocket.pk
    assert (pocket["aid_name"], pocket["funder_name"]) == (program.name, program.funder.name)
    assert (pocket["available"], pocket["held"], pocket["currency"]) == (8750, 1250, "EUR")
    assert plain(pocket["available_display"]) == "87,50 €"
    assert plain(pocket["held_display"]) == "12,50 €"
    [english] = api_en.read("/pockets").json()["data"]
    assert english["available_display"] == "€87.50"


def test_only_active_pockets_are_listed(api, food_pocket, beneficiary):
    revoked = make_allocation(beneficiary=beneficiary)
    allocation_revoke(allocation=revoked)

    ids = [p["id"] for p in api.read("/pockets").json()["data"]]

    assert ids == [food_pocket.pk]
    assert api.read(f"/pockets/{revoked.pocket.pk}").status_code == 404


def test_the_pocket_that_ends_first_comes_first(api, beneficiary):
    later = make_allocation(beneficiary=beneficiary, days=60)
    sooner = make_allocation(beneficiary=beneficiary, days=20)

    ids = [p["id"] for p in api.read("/pockets").json()["data"]]

    assert ids == [sooner.pocket.pk, later.pocket.pk]


@time_machine.travel(NOW, tick=False)
def test_a_pocket_ending_within_14_days_warns(api_en, beneficiary):
    make_allocation(
        beneficiary=beneficiary,
        valid_from=datetime(2026, 11, 1, tzinfo=PARIS),
        valid_until=datetime(2026, 12, 1, tzinfo=PARIS),
    )

    [pocket] = api_en.read("/pockets").json()["data"]

    assert pocket["expires_soon"] is True
    assert pocket["valid_until_display"] == "Nov. 30, 2026 included"
    assert pocket["expiry_warning"] == (
        "This aid ends in 8 days: it can be used until Nov. 30, 2026 included."
    )


@time_machine.travel(NOW, tick=False)
def test_a_pocket_ending_today_says_so(api_en, beneficiary):
    make_allocation(
        beneficiary=beneficiary,
        valid_from=datetime(2026, 11, 1, tzinfo=PARIS),
        valid_until=datetime(2026, 11, 22, 18, 0, tzinfo=PARIS),
    )

    [pocket] = api_en.read("/pockets").json()["data"]

    assert pocket["expiry_warning"].startswith("This aid ends today")


@time_machine.travel(NOW, tick=False)
def test_a_pocket_ending_later_does_not_warn(api, beneficiary):
    make_allocation(
        beneficiary=beneficiary,
        valid_from=datetime(2026, 11, 1, tzinfo=PARIS),
        valid_until=datetime(2026, 12, 7, tzinfo=PARIS),
    )

    [pocket] = api.read("/pockets").json()["data"]

    assert (pocket["expires_soon"], pocket["expiry_warning"]) == (False, None)


def test_another_beneficiarys_pocket_answers_404(api, other_pocket):
    for path in (f"/pockets/{other_pocket.pk}", f"/pockets/{other_pocket.pk}/merchants"):
        response = api.read(path)
        assert response.status_code == 404
        assert error_code(response) == "not_found"


def test_a_huge_pocket_id_answers_404(api):
    assert api.read(f"/pockets/{10**30}").status_code == 404


# Every kind of rule, in plain words, in French and in English.
RULES = [
    pytest.param(
        {"schedule": {"weekdays": [0, 2, 4]}},
        "Seulement les jours suivants : lundi, mercredi, vendredi.",
        "Only on these days: Monday, Wednesday, Friday.",
        id="schedule-days",
    ),
    pytest.param(
        {"schedule": {"hours": [["08:00", "12:30"], ["14:00", "19:00"]]}},
        "Seulement aux heures suivantes : de 08:00 à 12:30, de 14:00 à 19:00.",
        "Only at these times: 08:00 to 12:30, 14:00 to 19:00.",
        id="schedule-hours",
    ),
    pytest.param(
        {"schedule": {"refuse_public_holidays": True}},
        "Pas les jours fériés.",
        "Not on public holidays.",
        id="schedule-holidays",
    ),
    pytest.param(
        {"categories": {"allow_groups": ["food", "health"]}},
        "Seulement dans : commerces alimentaires, pharmacies et professionnels de santé.",
        "Only in: food shops, pharmacies and health care.",
        id="categories-groups",
    ),
    pytest.param(
        {"categories": {"allow_mccs": ["5411", "5811-5814"]}},
        "Seulement dans : commerces de catégorie 5411, commerces des catégories 5811 à 5814.",
        "Only in: shops with category code 5411, shops with category codes 5811 to 5814.",
        id="categories-mccs",
    ),
    pytest.param(
        {"categories": {"block_groups": ["alcohol_tobacco_betting"], "block_mccs": ["5921"]}},
        "Pas dans : bars, cavistes, bureaux de tabac et jeux d'argent, "
        "commerces de catégorie 5921.",
        "Not in: bars, off-licences, tobacconists and betting, shops with category code 5921.",
        id="categories-blocked",
    ),
    pytest.param(
        {"categories": {"allow_cash": True}},
        "Vous pouvez aussi l'utiliser pour retirer de l'argent liquide.",
        "Can also be used to get cash.",
        id="categories-cash",
    ),
    pytest.param(
        {"merchants": {"allow": [12, 15]}},
        "Seulement dans 2 commerces partenaires.",
        "Only in 2 partner shops.",
        id="merchants-allow",
    ),
    pytest.param(
        {"merchants": {"deny": [7]}},
        "Pas dans 1 commerce exclu par l'organisme qui donne l'aide.",
        "Not in 1 shop excluded by the funder.",
        id="merchants-deny",
    ),
    pytest.param(
        {"zone": {"countries": ["FR"]}},
        "Seulement dans cette zone : France.",
        "Only in this area: France.",
        id="zone-countries",
    ),
    pytest.param(
        {"zone": {"departements": ["38", "2A", "974"]}},
        "Seulement dans cette zone : Isère (38), Corse-du-Sud (2A), La Réunion (974).",
        "Only in this area: Isère (38), Corse-du-Sud (2A), La Réunion (974).",
        id="zone-departements",
    ),
    pytest.param(
        {"zone": {"communes": ["38185"]}},
        "Seulement dans cette zone : la commune de code INSEE 38185.",
        "Only in this area: the town with INSEE code 38185.",
        id="zone-communes",
    ),
    pytest.param(
        {"zone": {"postcode_prefixes": ["380"]}},
        "Seulement dans cette zone : les codes postaux qui commencent par 380.",
        "Only in this area: postcodes starting with 380.",
        id="zone-postcodes",
    ),
    pytest.param(
        {"zone": {"circles": [{"lat": 45.19, "lon": 5.72, "radius_km": 2.5}]}},
        "Seulement dans cette zone : à moins de 2,5 km du lieu indiqué sur la carte de "
        "l'application.",
        "Only in this area: within 2.5 km of the place shown on the map in the app.",
        id="zone-circles",
    ),
    pytest.param(
        {"limits": {"per_payment": 5000}},
        "Jusqu'à 50,00 € par paiement.",
        "At most €50.00 per payment.",
        id="limit-per-payment",
    ),
    pytest.param(
        {"limits": {"day": 2500}},
        "Jusqu'à 25,00 € par jour.",
        "At most €25.00 per day.",
        id="limit-day",
    ),
    pytest.param(
        {"limits": {"week": 10000}},
        "Jusqu'à 100,00 € par semaine, du lundi au dimanche.",
        "At most €100.00 per week, from Monday to Sunday.",
        id="limit-week",
    ),
    pytest.param(
        {"limits": {"month": 30000}},
        "Jusqu'à 300,00 € par mois, du 1er au dernier jour du mois.",
        "At most €300.00 per calendar month.",
        id="limit-month",
    ),
    pytest.param(
        {"limits": {"year": 100000}},
        "Jusqu'à 1 000,00 € par année, du 1er janvier au 31 décembre.",
        "At most €1,000.00 per calendar year.",
        id="limit-year",
    ),
    pytest.param(
        {"limits": {"validity": 200000}},
        "Jusqu'à 2 000,00 € au total.",
        "At most €2,000.00 in all.",
        id="limit-validity",
    ),
]


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize(("rules", "french", "english"), RULES)
def test_each_rule_reads_in_plain_words_in_both_languages(beneficiary, rules, french, english):
    program = make_program(rules=rules)
    allocation = make_allocation(
        program=program,
        beneficiary=beneficiary,
        valid_from=datetime(2026, 11, 1, tzinfo=PARIS),
        valid_until=datetime(2027, 4, 1, tzinfo=PARIS),
    )
    path = f"/pockets/{allocation.pocket.pk}"

    in_french = AppClient(beneficiary.wallet, language="fr").read(path).json()["rules"]
    in_english = AppClient(beneficiary.wallet, language="en").read(path).json()["rules"]

    assert [plain(line) for line in in_french] == [
        "Vous pouvez l'utiliser du 1 novembre 2026 au 31 mars 2027 inclus.",
        french,
    ]
    assert [plain(line) for line in in_english] == [
        "Can be used from Nov. 1, 2026 until March 31, 2027 included.",
        english,
    ]


def test_allocation_overrides_replace_the_programs_rule(api_en, beneficiary):
    program = make_program(rules={"limits": {"day": 2500}})
    allocation = make_allocation(
        program=program, beneficiary=beneficiary, rules={"limits": {"day": 4000}}
    )

    rules = api_en.read(f"/pockets/{allocation.pocket.pk}").json()["rules"]

    assert "At most €40.00 per day." in rules
    assert "At most €25.00 per day." not in rules


def test_the_number_of_queries_does_not_grow_with_the_pockets(api, beneficiary):
    make_allocation(beneficiary=beneficiary)
    with CaptureQueriesContext(connection) as one:
        api.read("/pockets")
    for _ in range(3):
        make_allocation(beneficiary=beneficiary, rules={"limits": {"day": 2500}})
    with CaptureQueriesContext(connection) as four:
        assert len(api.read("/pockets").json()["data"]) == 4

    assert len(four) == len(one)
