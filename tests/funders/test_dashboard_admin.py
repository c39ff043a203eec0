"""The dashboards in the admin: the funder's (changelist of ProgramDashboard) and a program's
(its change page), their charts and tables, the period form, the exports, and that one
funder's staff never reach another funder's figures."""

import html
import re
from datetime import date

import pytest
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.files.storage import default_storage
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.http import urlencode

from backoffice import exports
from backoffice.tasks import program_export_build
from funders import reports
from funders.models import Membership, ProgramExport
from tests.factories import make_program, make_staff
from tests.funders.conftest import client_for
from tests.funders.test_reports import PERIOD, build_scenario, read_csv

QUERY = {"from": "2026-03-01", "to": "2026-03-12"}
NARROW = "\u202f"  # French thousands separator
NBSP = "\u00a0"  # before the euro sign


@pytest.fixture
def scenario(funder, other_funder, time_machine):
    return build_scenario(funder=funder, other_funder=other_funder, time_machine=time_machine)


def dashboard_url(program) -> str:
    return reverse("admin:funders_programdashboard_change", args=[program.pk])


def export_url(program, kind: str, file_format: str) -> str:
    return reverse("admin:funders_programdashboard_export", args=[program.pk, kind, file_format])


FUNDER_DASHBOARD = reverse("admin:funders_programdashboard_changelist")


def chart_pairs(svg: str) -> list[tuple[str, str]]:
    """(label, value) of each bar pygal drew."""
    bars = re.findall(r'<desc class="value">(.*?)</desc>.*?<desc class="x_label">(.*?)</desc>', svg)
    return [(html.unescape(label), html.unescape(value)) for value, label in bars]


# --- the program's dashboard ----------------------------------------------------------------------


def test_program_dashboard_shows_the_figures_in_french(scenario, manager_client):
    response = manager_client.get(dashboard_url(scenario.program), QUERY)

    assert response.status_code == 200
    content = response.content.decode()
    assert f"1{NARROW}000,00{NBSP}€" in content  # paid in
    assert f"71,50{NBSP}€" in content  # spent
    assert f"636,00{NBSP}€" in content  # can be allocated
    assert response.context["period"] == PERIOD


def test_every_breakdown_has_a_chart_with_the_numbers_of_its_table(scenario, manager_client):
    charts = manager_client.get(dashboard_url(scenario.program), QUERY).context["charts"]

    assert len(charts) == 5
    for chart in charts:
        assert chart.svg is not None, chart.title
        assert sorted(chart_pairs(chart.svg)) == sorted(chart.rows), chart.title
    by_shop = dict(charts[2].rows)
    assert by_shop["Pharmacie de Savoie"] == f"33,50{NBSP}€"
    assert dict(charts[4].rows) == {
        reports.reason_label("merchant_category_not_allowed"): "2",
        reports.reason_label("outside_zone"): "1",
    }


def test_where_the_money_is_is_drawn_with_the_figures_of_its_table(scenario, manager_client):
    context = manager_client.get(dashboard_url(scenario.program), QUERY).context

    chart = context["position_chart"]
    # Horizontal bars are drawn from the bottom up: top down, they read as the table.
    assert chart_pairs(chart.svg)[::-1] == context["figures"]["position"] == chart.rows
    assert chart.rows[0][1] == f"636,00{NBSP}€"


def test_charts_are_labelled_images_that_run_and_fetch_nothing(scenario, manager_client):
    context = manager_client.get(dashboard_url(scenario.program), QUERY).context

    for chart in [context["position_chart"], *context["charts"]]:
        opening = chart.svg[: chart.svg.index(">")]
        assert 'role="img"' in opening
        assert f'aria-label="{html.escape(chart.title)}"' in opening
        assert "<script" not in chart.svg
        assert "xml-stylesheet" not in chart.svg
        assert not re.search(r'href="(https?:)?//', chart.svg)


def test_a_merchant_name_is_escaped_in_the_charts(scenario, manager_client):
    response = manager_client.get(dashboard_url(scenario.program), QUERY)

    content = response.content.decode()
    assert "<script>alert(1)</script>" not in content
    by_shop = response.context["charts"][2].svg
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in by_shop


def test_a_period_with_nothing_spent_shows_no_chart(scenario, manager_client):
    response = manager_client.get(
        dashboard_url(scenario.program), {"from": "2025-01-01", "to": "2025-01-31"}
    )

    assert response.status_code == 200
    assert all(chart.svg is None for chart in response.context["charts"])


def test_the_default_period_is_the_last_ninety_days(scenario, manager_client):
    response = manager_client.get(dashboard_url(scenario.program))

    assert response.context["period"] == reports.Period(
        start=date(2025, 12, 13), end=date(2026, 3, 12)
    )
    assert response.context["period"].by_month


@pytest.mark.parametrize(
    ("query", "field", "code"),
    [
        ({"from": "2026-13-01"}, "from", "invalid"),
        ({"to": "12/03/2026"}, "to", "invalid"),
        ({"from": "1900-01-01"}, "from", "min_value"),
        ({"from": "2026-03-12", "to": "2026-03-01"}, NON_FIELD_ERRORS, "period_reversed"),
        ({"from": "2020-01-01", "to": "2026-03-01"}, NON_FIELD_ERRORS, "period_too_long"),
    ],
)
def test_bad_dates_are_a_form_error(scenario, manager_client, query, field, code):
    response = manager_client.get(dashboard_url(scenario.program), query)

    assert response.status_code == 200
    assert response.context["period_form"].has_error(field, code)
    assert response.context["period"] == reports.Period.default(today=date(2026, 3, 12))


def test_an_agent_sees_the_dashboard(scenario, agent_client):
    assert agent_client.get(dashboard_url(scenario.program)).status_code == 200


def test_staff_of_no_funder_are_refused(scenario):
    client = client_for(make_staff())

    assert client.get(FUNDER_DASHBOARD).status_code == 403
    assert client.get(dashboard_url(scenario.program)).status_code == 404


# --- exports -------------------------------------------------------------------------------------


@pytest.fixture
def built_at_once(settings, tmp_path, django_capture_on_commit_callbacks):
    """Exports built by their task as the request commits, into a storage of the test's own."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.MEDIA_ROOT = str(tmp_path)

    def ask(client, program, kind, file_format, query=QUERY):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(f"{export_url(program, kind, file_format)}?{urlencode(query)}")

    return ask


def download(client, program, position: int = 0):
    """The file of the dashboard's `position`-th export asked for (newest first)."""
    prepared = client.get(dashboard_url(program), QUERY).context["prepared"]
    _export, _label, url = prepared[position]
    response = client.get(url)
    return response, b"".join(response.streaming_content) if response.status_code == 200 else b""


@pytest.mark.parametrize("kind", exports.KINDS)
@pytest.mark.parametrize("file_format", list(exports.FORMATS))
def test_an_agent_downloads_every_export(scenario, agent_client, built_at_once, kind, file_format):
    # when the agent asks for it, it is built by a task into the file storage
    response = built_at_once(agent_client, scenario.program, kind, file_format)
    assert response.status_code == 302
    assert response["Location"].endswith("#exports")

    # then the dashboard offers it, and it downloads
    response, content = download(agent_client, scenario.program)
    assert response.status_code == 200
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"-{kind}-2026-03-12.{file_format}" in disposition
    assert content


def test_an_export_asked_for_shows_being_prepared_in_french_until_it_is_built(
    scenario, manager_client, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = str(tmp_path)
    # a worker that has not taken the task yet
    with django_capture_on_commit_callbacks(execute=False):
        response = manager_client.post(
            f"{export_url(scenario.program, 'payments', 'csv')}?{urlencode(QUERY)}", follow=True
        )
    content = response.content.decode()
    assert "Votre fichier est en préparation" in content
    assert "En préparation… rechargez la page dans un instant." in content
    export = ProgramExport.objects.get()
    assert export.status == ProgramExport.Status.PREPARING
    url = reverse("admin:funders_programdashboard_download", args=[scenario.program.pk, export.pk])
    assert manager_client.get(url).status_code == 404  # nothing to download yet

    # once the task ran, the file is in the storage and the page links to it
    program_export_build(export.pk)
    export.refresh_from_db()
    assert export.status == ProgramExport.Status.READY
    assert default_storage.exists(export.file.name)
    assert "Télécharger" in manager_client.get(dashboard_url(scenario.program)).content.decode()
    assert manager_client.get(url).status_code == 200


def test_the_payments_export_covers_the_period_asked(scenario, manager_client, built_at_once):
    built_at_once(
        manager_client,
        scenario.program,
        "payments",
        "csv",
        {"from": "2026-03-04", "to": "2026-03-04"},
    )
    _response, content = download(manager_client, scenario.program)

    assert len(read_csv(content)) == 3  # the three refused payments


def test_export_links_carry_the_period(scenario, manager_client):
    response = manager_client.get(dashboard_url(scenario.program), QUERY)

    links = dict(response.context["exports"][1][1])
    assert links["CSV"] == (
        export_url(scenario.program, "payments", "csv") + "?from=2026-03-01&to=2026-03-12"
    )


def test_an_export_with_bad_dates_goes_back_to_the_dashboard(scenario, manager_client):
    response = manager_client.post(f"{export_url(scenario.program, 'payments', 'csv')}?from=x")

    assert response.status_code == 302
    assert response["Location"].startswith(dashboard_url(scenario.program) + "?")
    assert not ProgramExport.objects.exists()


def test_an_export_is_asked_for_by_post_only(scenario, manager_client):
    response = manager_client.get(export_url(scenario.program, "payments", "csv"), QUERY)

    assert response.status_code == 405
    assert not ProgramExport.objects.exists()


@pytest.mark.parametrize(("kind", "file_format"), [("ledger", "csv"), ("payments", "pdf")])
def test_an_unknown_export_is_not_found(scenario, manager_client, kind, file_format):
    assert manager_client.post(export_url(scenario.program, kind, file_format)).status_code == 404


# --- the funder's dashboard ---------------------------------------------------------------------


def test_funder_dashboard_lists_every_program_with_its_figures(scenario, manager_client):
    response = manager_client.get(FUNDER_DASHBOARD)

    assert response.status_code == 200
    content = response.content.decode()
    assert dashboard_url(scenario.program) in content
    assert dashboard_url(scenario.small_program) in content
    assert f"1{NARROW}050,00{NBSP}€" in content  # paid in, both programs
    (total,) = response.context["totals"]
    assert chart_pairs(total["chart"].svg)[::-1] == total["figures"]["position"]
    (spent,) = response.context["charts"]
    assert chart_pairs(spent.svg) == [(scenario.program.name, f"71,50{NBSP}€")]
    assert response.context["funder_choices"] == [scenario.program.funder]
    assert 'name="funder"' not in content  # one funder: nothing to choose


def test_funder_dashboard_takes_the_same_queries_for_more_programs(
    scenario, funder, manager_client
):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert manager_client.get(FUNDER_DASHBOARD).status_code == 200
        return len(captured)

    before = queries()
    for _ in range(3):
        make_program(funder=funder, funded=1_000)

    assert queries() == before


def test_an_operator_chooses_the_funder(scenario, operator):
    client = client_for(operator)

    first = client.get(FUNDER_DASHBOARD)
    chosen = client.get(FUNDER_DASHBOARD, {"funder": scenario.other_program.funder_id})

    assert 'name="funder"' in first.content.decode()
    assert len(first.context["funder_choices"]) == 2
    assert chosen.context["funder"] == scenario.other_program.funder
    assert scenario.other_program.name in chosen.content.decode()
    assert scenario.program.name not in chosen.content.decode()


def test_a_member_of_two_funders_chooses_between_them(scenario, manager, other_funder):
    Membership.objects.create(user=manager, funder=other_funder, role=Membership.Role.AGENT)

    response = client_for(manager).get(FUNDER_DASHBOARD, {"funder": other_funder.pk})

    assert response.status_code == 200
    assert scenario.other_program.name in response.content.decode()


# --- one funder's staff never reach another's figures ------------------------------------------


def test_another_funders_program_dashboard_is_not_found(scenario, other_client):
    assert other_client.get(dashboard_url(scenario.program)).status_code == 404


@pytest.mark.parametrize("kind", exports.KINDS)
@pytest.mark.parametrize("file_format", list(exports.FORMATS))
def test_another_funders_exports_are_not_found(scenario, other_client, kind, file_format):
    response = other_client.post(f"{export_url(scenario.program, kind, file_format)}?from=x")

    assert response.status_code == 404
    assert not ProgramExport.objects.exists()


def test_another_funder_cannot_download_a_file_made_for_a_program_not_theirs(
    scenario, manager_client, other_client, built_at_once
):
    built_at_once(manager_client, scenario.program, "payments", "csv")
    export = ProgramExport.objects.get(status=ProgramExport.Status.READY)
    own = reverse("admin:funders_programdashboard_download", args=[scenario.program.pk, export.pk])
    # through its program's address, and through one of the other funder's own programs
    theirs = reverse(
        "admin:funders_programdashboard_download", args=[scenario.other_program.pk, export.pk]
    )

    assert other_client.get(own).status_code == 404
    assert other_client.get(theirs).status_code == 404
    assert manager_client.get(own).status_code == 200


@pytest.mark.parametrize("chosen", ["funder", "nonsense", ""])
def test_the_funder_selector_refuses_a_funder_not_ones_own(scenario, other_client, chosen):
    value = str(scenario.program.funder_id) if chosen == "funder" else chosen

    assert other_client.get(FUNDER_DASHBOARD, {"funder": value}).status_code == 404


def test_the_funder_dashboard_shows_no_other_funders_program(scenario, other_client):
    response = other_client.get(FUNDER_DASHBOARD)

    content = response.content.decode()
    assert scenario.other_program.name in content
    assert scenario.program.name not in content
    assert scenario.small_program.name not in content
    assert scenario.program.funder.name not in content


def test_the_charts_are_drawn_the_same_each_time(scenario, manager_client):
    # pygal's random chart ids once made charts differ, and could form runs of digits that the
    # secrets scanner takes for a card number.
    def charts():
        context = manager_client.get(dashboard_url(scenario.program), QUERY).context
        return [chart.svg for chart in context["charts"]] + [context["position_chart"].svg]

    first, second = charts(), charts()

    assert first == second
    assert len(set(first)) == len(first)  # each chart its own id, for its own styles
