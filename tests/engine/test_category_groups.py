"""The category groups file: every code real, every group labelled, cash kept apart."""

import pytest

from engine import categories
from engine.categories import MccRange


def test_every_code_in_the_groups_file_is_known_to_iso18245():
    codes = set(categories.CASH_MCCS).union(*categories.GROUPS.values())
    assert {code for code in codes if not categories.is_known_mcc(code)} == set()


def test_every_group_has_a_label_and_every_label_a_group():
    assert set(categories.GROUP_LABELS) == set(categories.GROUPS)


def test_the_cash_codes_include_cash_and_quasi_cash():
    assert {"6010", "6011", "6050", "6051", "6540", "4829"} <= categories.CASH_MCCS


def test_no_group_a_funder_allows_contains_cash():
    allowable = set(categories.GROUPS) - {"alcohol_tobacco_betting"}
    for name in allowable:
        assert not categories.GROUPS[name] & categories.CASH_MCCS, name


def test_food_is_groceries_not_restaurants():
    assert "5411" in categories.GROUPS["food"]
    assert "5812" not in categories.GROUPS["food"]
    assert "5812" in categories.GROUPS["restaurants"]
    assert "5813" not in categories.GROUPS["restaurants"]  # bars


@pytest.mark.parametrize(
    ("ranges", "count"),
    [
        ((), 0),
        ((MccRange(5811, 5814),), 4),
        ((MccRange(5811, 5814), MccRange(5812, 5812)), 4),
        ((MccRange(5811, 5814), MccRange(5813, 5820)), 10),
        ((MccRange(1, 1), MccRange(3, 3)), 2),
        ((MccRange(0, 9999),), 10_000),
    ],
)
def test_count_codes_counts_overlaps_once(ranges, count):
    assert categories.count_codes(ranges) == count


def test_mcc_range_membership_and_text():
    assert "5811" in MccRange(5811, 5814)
    assert "5815" not in MccRange(5811, 5814)
    assert "58a1" not in MccRange(5811, 5814)
    assert str(MccRange(5811, 5814)) == "5811-5814"
    assert str(MccRange.single("0742")) == "0742"
