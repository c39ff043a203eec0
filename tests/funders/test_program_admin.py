"""The program pages of the back office: rules saved from one form, the rules in plain words,
funding, and who reaches what."""

import html
from datetime import timedelta

import pytest
from django.utils import timezone, translation
from django.utils.text import capfirst

from core.money import format_money
from engine.rules import PocketRules
from funders.models import Funding, Program
from ledger.models import Account
from tests.factories import make_program
from tests.funders.conftest import with_tested_rules

pytestmark = pytest.mark.django_db

PROGRAMS = "/admin/funders/program/"
FUNDINGS = "/admin/funders/funding/"


def change_url(program) -> str:
    return f"{PROGRAMS}{program.pk}/change/"


def fund_url(program) -> str:
    return f"{PROGRAMS}{program.pk}/fund/"


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def in_page_language(response):
    return translation.override(response.headers["Content-Language"])


@pytest.fixture
def program(funder):
    return make_program(funder=funder, funded=123_450, rules={"limits": {"day": 2500}})


def edit_data(program, **fields) -> dict:
    """The change form as sent with the program's fields and no rule set."""
    return {
        "name": program.name,
        "purpose": program.purpose,
        "is_active": "on",
        # The criteria inline (proactive aid), sent empty as the page sends it with none.
        "criteria-TOTAL_FORMS": "0",
        "criteria-INITIAL_FORMS": "0",
        **fields,
    }


def fund_form(client, program) -> dict:
    shown = client.get(fund_url(program))
    assert shown.status_code == 200
    form = shown.context["form"]
    return {
        "token": str(form["token"].value()),
        "amount": "1 500,00",
        "method": Funding.Method.BANK_TRANSFER,
        "reference": "VIR CD38 2025-001",
        "received_on": timezone.localdate().isoformat(),
    }


# --- programs and rules -------------------------------------------------------------------------


def test_a_manager_creates_a_program_with_its_rules(manager_client, funder):
    response = manager_client.post(
        f"{PROGRAMS}add/",
        {
            "funder": funder.pk,
            "name": "Aide aux courses",
            "purpose": "Courses alimentaires",
            "currency": "EUR",
            "weekdays": ["0", "1", "2", "3", "4"],
            "hours": "08:00-19:00",
            "allow_groups": ["food"],
            "departements": ["38"],
            "limit_per_payment": "50",
            "limit_month": "150,50",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    program = Program.objects.get(name="Aide aux courses")
    assert program.funder == funder
    assert program.float_account.kind == Account.Kind.PROGRAM_FLOAT
    assert program.rules == {
        "schedule": {"weekdays": [0, 1, 2, 3, 4], "hours": [["08:00", "19:00"]]},
        "categories": {"allow_groups": ["food"]},
        "zone": {"departements": ["38"]},
        "limits": {"per_payment": 5000, "month": 15050},
    }


def test_bad_rules_are_shown_on_their_field_and_nothing_is_created(manager_client, funder):
    response = manager_client.post(
        f"{PROGRAMS}add/",
        {"funder": funder.pk, "name": "Aide", "currency": "EUR", "circles": "45.1, 5.7, 0"},
    )
    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"circles"}
    assert not Program.objects.filter(name="Aide").exists()


def test_a_manager_cannot_create_a_program_for_another_funder(manager_client, other_funder):
    response = manager_client.post(
        f"{PROGRAMS}add/", {"funder": other_funder.pk, "name": "Intrus", "currency": "EUR"}
    )
    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"funder"}
    assert not Program.objects.filter(name="Intrus").exists()


def test_a_manager_changes_the_rules_and_history_names_them(manager_client, manager, program):
    data = edit_data(program, refuse_public_holidays="on", limit_day="30")
    response = manager_client.post(
        change_url(program), with_tested_rules(manager_client, change_url(program), data)
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    program.refresh_from_db()
    assert program.rules == {
        "schedule": {"refuse_public_holidays": True},
        "limits": {"day": 3000},
    }
    last = program.history.first()
    assert last.history_user == manager
    assert last.rules == program.rules
    history = manager_client.get(f"{change_url(program)[: -len('change/')]}history/")
    assert history.status_code == 200
    assert manager.username in page_text(history)
    with in_page_language(history):
        changed_field = capfirst(Program._meta.get_field("rules").verbose_name)
    assert f"{changed_field}:" in page_text(history)


def test_saving_the_page_unchanged_keeps_the_rules(manager_client, program):
    shown = manager_client.get(change_url(program))
    form = shown.context["adminform"].form
    assert form["limit_day"].value() == "25,00"
    response = manager_client.post(change_url(program), edit_data(program, limit_day="25,00"))
    assert response.status_code == 302
    program.refresh_from_db()
    assert program.rules == {"limits": {"day": 2500}}


def test_the_change_page_shows_the_rules_in_plain_words(manager_client, program):
    response = manager_client.get(change_url(program))
    assert response.status_code == 200
    with in_page_language(response):
        lines = PocketRules.from_dict(program.rules).describe(currency="EUR")
    assert lines
    for line in lines:
        assert line in page_text(response)


def test_the_list_shows_what_is_not_yet_allocated_in_euros(manager_client, program):
    response = manager_client.get(PROGRAMS)
    with in_page_language(response):
        available = format_money(123_450, "EUR")
    assert program.name in page_text(response)
    assert available in page_text(response)


def test_another_funders_manager_never_reaches_the_program(other_client, program):
    assert program.name not in page_text(other_client.get(PROGRAMS))
    assert other_client.get(change_url(program)).status_code == 404
    assert other_client.post(change_url(program), edit_data(program)).status_code == 404
    assert other_client.get(fund_url(program)).status_code == 404
    assert other_client.get(f"{PROGRAMS}{program.pk}/history/").status_code == 404
    version = program.history.first().history_id
    assert other_client.get(f"{PROGRAMS}{program.pk}/history/{version}/").status_code == 404
    assert program.name not in page_text(other_client.get(FUNDINGS))


def test_an_agent_sees_the_program_read_only(agent_client, program):
    response = agent_client.get(change_url(program))
    assert response.status_code == 200
    content = page_text(response)
    assert 'name="_save"' not in content
    assert 'name="hours"' not in content
    assert fund_url(program) not in content
    with in_page_language(response):
        assert PocketRules.from_dict(program.rules).describe()[0] in content
    assert agent_client.post(change_url(program), edit_data(program)).status_code == 403


def test_an_agent_cannot_revert_a_program_from_its_history(agent_client, program):
    version = program.history.first().history_id
    url = f"{PROGRAMS}{program.pk}/history/{version}/"
    assert agent_client.get(url).status_code == 200
    assert agent_client.post(url, edit_data(program, limit_day="999")).status_code == 403
    program.refresh_from_db()
    assert program.rules == {"limits": {"day": 2500}}


# --- funding ------------------------------------------------------------------------------------


def test_the_change_page_offers_funding_to_a_manager(manager_client, program):
    assert fund_url(program) in manager_client.get(change_url(program)).content.decode()


def test_a_manager_funds_a_program(manager_client, manager, program):
    data = fund_form(manager_client, program)
    response = manager_client.post(fund_url(program), data)
    assert response.status_code == 302
    assert response.url == change_url(program)
    funding = Funding.objects.exclude(created_by=None).get(program=program)
    assert (funding.amount, funding.method, funding.reference, funding.created_by) == (
        150_000,
        Funding.Method.BANK_TRANSFER,
        "VIR CD38 2025-001",
        manager,
    )
    program.float_account.refresh_from_db()
    assert program.float_account.available == 123_450 + 150_000


def test_the_same_funding_form_sent_twice_funds_once(manager_client, program):
    data = fund_form(manager_client, program)
    for _ in range(2):
        assert manager_client.post(fund_url(program), data).status_code == 302
    assert Funding.objects.filter(program=program).count() == 2  # the factory's and this one
    program.float_account.refresh_from_db()
    assert program.float_account.available == 123_450 + 150_000


def test_a_form_sent_again_with_another_amount_is_refused(manager_client, program):
    data = fund_form(manager_client, program)
    manager_client.post(fund_url(program), data)
    response = manager_client.post(fund_url(program), {**data, "amount": "99"})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    program.float_account.refresh_from_db()
    assert program.float_account.available == 123_450 + 150_000


@pytest.mark.parametrize(
    ("fields", "field", "code"),
    [
        ({"amount": "10,001"}, "amount", "too_many_decimals"),
        ({"amount": "-10"}, "amount", "not_positive"),
        (
            {"method": Funding.Method.STRIPE_TOPUP, "reference": "VIR 12"},
            "reference",
            "not_a_topup",
        ),
        (
            {"received_on": (timezone.localdate() + timedelta(days=1)).isoformat()},
            "received_on",
            "future_date",
        ),
    ],
)
def test_a_bad_funding_form_moves_no_money(manager_client, program, fields, field, code):
    data = {**fund_form(manager_client, program), **fields}
    response = manager_client.post(fund_url(program), data)
    assert response.status_code == 200
    errors = response.context["form"].errors.as_data()
    assert [e.code for e in errors[field]] == [code]
    assert Funding.objects.filter(program=program).count() == 1


def test_a_stripe_top_up_is_recorded_with_its_id(manager_client, program):
    data = {
        **fund_form(manager_client, program),
        "method": Funding.Method.STRIPE_TOPUP,
        "reference": "tu_1PqR2s",
    }
    assert manager_client.post(fund_url(program), data).status_code == 302
    assert Funding.objects.filter(program=program, reference="tu_1PqR2s").exists()


def test_an_agent_cannot_fund(agent_client, manager_client, program):
    data = fund_form(manager_client, program)
    assert agent_client.get(fund_url(program)).status_code == 403
    assert agent_client.post(fund_url(program), data).status_code == 403
    assert Funding.objects.filter(program=program).count() == 1


def test_fundings_are_listed_read_only_for_their_funder(manager_client, other_client, program):
    manager_client.post(fund_url(program), fund_form(manager_client, program))
    funding = Funding.objects.exclude(created_by=None).get(program=program)
    listed = manager_client.get(FUNDINGS)
    assert "VIR CD38 2025-001" in page_text(listed)
    assert "VIR CD38 2025-001" not in page_text(other_client.get(FUNDINGS))
    assert manager_client.get(f"{FUNDINGS}add/").status_code == 403
    assert manager_client.get(f"{FUNDINGS}{funding.pk}/change/").status_code == 200
    changed = manager_client.post(f"{FUNDINGS}{funding.pk}/change/", {"reference": "X"})
    assert changed.status_code == 403
    assert manager_client.get(f"{FUNDINGS}{funding.pk}/history/").status_code == 200
    assert other_client.get(f"{FUNDINGS}{funding.pk}/change/").status_code == 404


def test_a_funding_cannot_be_changed_through_its_history(manager_client, program):
    funding = Funding.objects.get(program=program)
    version = funding.history.first().history_id
    url = f"{FUNDINGS}{funding.pk}/history/{version}/"
    response = manager_client.post(url, {"amount": 1, "reference": "changed"})
    assert response.status_code == 403
    funding.refresh_from_db()
    assert funding.amount == 123_450
