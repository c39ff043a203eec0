"""The NAF → MCC table: common shops get the category and the kinds of aid they will take."""

import pytest

from engine.categories import is_known_mcc
from merchants.naf import _table, naf_normalize, naf_suggestion


@pytest.mark.parametrize(
    ("naf", "mcc", "group"),
    [
        ("47.11", "5411", "food"),  # supermarkets (a class: its first sub-class)
        ("47.11F", "5411", "food"),  # hypermarkets
        ("47.24Z", "5462", "food"),  # bakery
        ("4724Z", "5462", "food"),  # as some documents write it
        ("49.31Z", "4111", "transport"),  # urban transport
        ("47.73Z", "5912", "health"),  # pharmacy
        ("56.10A", "5812", "restaurants"),  # restaurants
        ("56.10C", "5814", "restaurants"),  # fast food
    ],
)
def test_common_shops_get_their_category_and_kinds_of_aid(naf, mcc, group):
    suggestion = naf_suggestion(naf)
    assert suggestion is not None
    assert (suggestion.mcc, group in suggestion.groups) == (mcc, True)


def test_a_tobacconist_is_offered_no_aid_kind_but_its_own_group():
    assert naf_suggestion("47.26Z").groups == ("alcohol_tobacco_betting",)


def test_an_unknown_activity_suggests_nothing():
    assert naf_suggestion("01.11Z") is None  # growing cereals
    assert naf_suggestion("") is None


def test_every_line_of_the_table_is_a_known_category_and_a_well_formed_code():
    for naf, (label, mcc) in _table().items():
        assert naf_normalize(naf) == naf and len(naf) == 6, naf
        assert label and is_known_mcc(mcc), naf
