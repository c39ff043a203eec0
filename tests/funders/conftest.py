"""The back office as each funder's staff sees it (the two funders and their staff are
fixtures of tests/conftest.py): most back-office tests check that one funder's staff never reach
the other's records."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils.http import urlencode

from backoffice.tasks import program_export_build
from funders.models import Membership, ProgramExport

Role = Membership.Role


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def export_downloaded(client: Client, program, kind: str, file_format: str, query: dict):
    """(response, content) of an export as a funder's staff gets it: asked for on the
    program's dashboard, built by its task (run here, as a worker would), downloaded from the
    dashboard's link. The asking's response, and no content, if it is refused."""
    url = reverse("admin:funders_programdashboard_export", args=[program.pk, kind, file_format])
    asked = client.post(f"{url}?{urlencode(query)}")
    if asked.status_code != 302:
        return asked, b""
    export = ProgramExport.objects.filter(program=program).latest("pk")
    program_export_build(export.pk)
    response = client.get(
        reverse("admin:funders_programdashboard_download", args=[program.pk, export.pk])
    )
    content = b"".join(response.streaming_content) if response.status_code == 200 else b""
    return response, content


@pytest.fixture
def manager_client(manager):
    return client_for(manager)


@pytest.fixture
def agent_client(agent):
    return client_for(agent)


@pytest.fixture
def other_client(other_manager):
    return client_for(other_manager)


def with_tested_rules(client, url: str, data: dict) -> dict:
    """`data` as a program's form sends it once its new rules went through a dry run whose
    result the user read: "Test these rules", the run (as a worker would), the result page."""
    from funders.dry_runs import rule_dry_run_execute
    from funders.models import RuleDryRun

    started = client.post(url, {**data, "_dry_run": "1"})
    assert started.status_code == 302, started.context["adminform"].form.errors
    dry_run = RuleDryRun.objects.get(pk=started.url.rstrip("/").rsplit("/", 1)[-1])
    rule_dry_run_execute(dry_run=dry_run)
    assert client.get(started.url).status_code == 200
    return {**data, "confirms_dry_run": str(dry_run.pk)}
