"""The back office's home: each funder's key figures and the programs needing attention, for the
user's funders only."""

import pytest
from django.urls import reverse

from tests.factories import BeneficiaryFactory, make_allocation, make_merchant, make_program
from tests.funders.conftest import client_for

pytestmark = pytest.mark.django_db


def test_the_home_shows_the_funder_s_figures_and_what_needs_attention(
    manager, funder, other_funder
):
    make_merchant()  # a grocery in Grenoble
    fine = make_program(funder=funder, name="Aide alimentaire", funded=100_000)
    make_allocation(program=fine, beneficiary=BeneficiaryFactory(), amount=5_000)
    make_program(
        funder=funder, name="Aide Corse", funded=100_000, rules={"zone": {"departements": ["2A"]}}
    )
    low = make_program(funder=funder, name="Aide presque vide", funded=10_000)
    make_allocation(program=low, beneficiary=BeneficiaryFactory(), amount=9_500)
    make_program(funder=other_funder, name="Aide Savoie", funded=777_700)

    page = client_for(manager).get(reverse("admin:index"))
    text = page.content.decode()

    assert page.status_code == 200
    assert "2\u202f100,00" in text or "2 100,00" in text  # funded, in euros
    assert "145,00" in text  # granted
    attention = text[text.index("attention") :]
    assert "Aide Corse" in attention and "aucun commerce agréé" in attention
    assert "Aide presque vide" in attention and "peu d\u2019argent" in attention
    assert "Aide alimentaire</a>" not in attention
    assert "Aide Savoie" not in text and "7\u202f777" not in text
