"""Rules compiled once per text (engine/compiled.py): the same text is parsed once, a changed
rule is a new text and is used at once."""

import json
from datetime import UTC, datetime

from engine.compiled import compiled_rules

FROM = datetime(2026, 1, 1, tzinfo=UTC)
UNTIL = datetime(2027, 1, 1, tzinfo=UTC)


def test_the_same_rules_are_compiled_once():
    text = json.dumps({"limits": {"day": 3_000}})
    first = compiled_rules(text, None, FROM, UNTIL)

    assert compiled_rules(text, None, FROM, UNTIL) is first
    assert first.limits.day == 3_000


def test_a_changed_rule_is_seen_at_once():
    before = compiled_rules(json.dumps({"limits": {"day": 3_000}}), "{}", FROM, UNTIL)
    after = compiled_rules(json.dumps({"limits": {"day": 1_000}}), "{}", FROM, UNTIL)

    assert (before.limits.day, after.limits.day) == (3_000, 1_000)


def test_the_allocation_s_section_replaces_the_program_s():
    program = json.dumps({"limits": {"day": 3_000}, "categories": {"allow_groups": ["food"]}})
    rules = compiled_rules(program, json.dumps({"limits": {"week": 500}}), FROM, None)

    assert (rules.limits.day, rules.limits.week) == (None, 500)
    assert rules.categories == compiled_rules(program, None, FROM, None).categories
    assert (rules.valid_from, rules.valid_until) == (FROM, None)
