"""The allocation file pages of the back office: upload, result, confirmation, progress, and who
reaches them."""

import csv
import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from funders.imports import allocation_import_create, error_message
from funders.models import Allocation, AllocationImport
from funders.services import program_fund
from tests.factories import make_program

FILES = Path(__file__).parent / "files"
Status = AllocationImport.Status
ADD = reverse("admin:funders_allocationimport_add")
LIST = reverse("admin:funders_allocationimport_changelist")


@pytest.fixture(autouse=True)
def today(time_machine):
    time_machine.move_to(datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Europe/Paris")))


@pytest.fixture
def eager(settings):
    """Tasks run inline when queued, as a worker would run them."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True


@pytest.fixture
def program(funder):
    return make_program(funder=funder, funded=100_000)


@pytest.fixture
def other_program(other_funder):
    return make_program(funder=other_funder, funded=100_000)


@pytest.fixture
def checked(program):
    return allocation_import_create(
        program=program, filename="valid.csv", content=(FILES / "valid.csv").read_bytes()
    )


def change_url(allocation_import, view="change"):
    return reverse(f"admin:funders_allocationimport_{view}", args=[allocation_import.pk])


def file(name="valid.csv", content=None):
    return SimpleUploadedFile(name, content or (FILES / name).read_bytes())


def post_upload(client, program, upload=None):
    return client.post(ADD, {"program": program.pk, "file": upload or file()})


# --- upload and result ---------------------------------------------------------------------------


def test_the_upload_page_offers_only_the_users_programs(manager_client, program, other_program):
    page = manager_client.get(ADD)
    assert page.status_code == 200
    assert program.name in page.text
    assert other_program.name not in page.text


def test_a_manager_uploads_a_file_and_sees_each_rows_result(manager_client, program):
    response = post_upload(manager_client, program)

    allocation_import = AllocationImport.objects.get()
    assert response.status_code == 302
    assert response.url == change_url(allocation_import)
    assert allocation_import.status == Status.CHECKED
    page = manager_client.get(response.url)
    assert page.status_code == 200
    assert "Camille Martin" in page.text and "Hugo Petit" in page.text
    assert change_url(allocation_import, "confirm") in page.text
    assert not Allocation.objects.exists()


def test_confirming_allocates_the_file(
    manager_client, program, eager, django_capture_on_commit_callbacks
):
    post_upload(manager_client, program)
    allocation_import = AllocationImport.objects.get()

    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(change_url(allocation_import, "confirm"))

    assert response.status_code == 302
    allocation_import.refresh_from_db()
    assert allocation_import.status == Status.APPLIED
    assert Allocation.objects.filter(program=program).count() == 3
    page = manager_client.get(change_url(allocation_import))
    assert change_url(allocation_import, "confirm") not in page.text


def test_confirming_needs_a_post(manager_client, checked):
    assert manager_client.get(change_url(checked, "confirm")).status_code == 405
    checked.refresh_from_db()
    assert checked.status == Status.CHECKED


def test_a_file_with_errors_shows_them_by_row_and_cannot_be_confirmed(manager_client, program):
    post_upload(manager_client, program, file("errors.csv"))
    allocation_import = AllocationImport.objects.get()

    page = manager_client.get(change_url(allocation_import))

    assert allocation_import.status == Status.INVALID
    assert change_url(allocation_import, "confirm") not in page.text
    unknown = next(r for r in allocation_import.report if r["row"] == 2)["errors"][0]
    assert error_message(unknown) in page.text
    manager_client.post(change_url(allocation_import, "confirm"))
    allocation_import.refresh_from_db()
    assert allocation_import.status == Status.INVALID
    assert not Allocation.objects.exists()


def test_an_unreadable_file_is_a_form_error(manager_client, program):
    response = post_upload(manager_client, program, file("a.csv", b"name;colour\nA;red\n"))
    assert response.status_code == 200
    assert response.context["form"].errors["file"]
    assert not AllocationImport.objects.exists()


def test_a_large_file_is_checked_by_a_task_while_a_page_shows_progress(
    manager_client, program, eager, django_capture_on_commit_callbacks
):
    lines = ["first_name,last_name,email,amount,valid_from"]
    lines += [f"A,B{n},p{n}@example.org,1,2026-12-01" for n in range(201)]
    big = file("big.csv", "\n".join(lines).encode())

    with django_capture_on_commit_callbacks() as queued:
        post_upload(manager_client, program, big)
    allocation_import = AllocationImport.objects.get()
    page = manager_client.get(change_url(allocation_import))

    assert allocation_import.status == Status.CHECKING
    assert '<meta http-equiv="refresh" content="2">' in page.text
    assert 'max="201"' in page.text
    for callback in queued:
        callback()
    allocation_import.refresh_from_db()
    assert allocation_import.status == Status.CHECKED
    assert allocation_import.processed_rows == 201


def test_the_page_of_a_file_being_applied_refreshes_itself(manager_client, checked):
    AllocationImport.objects.filter(pk=checked.pk).update(status=Status.APPLYING)
    page = manager_client.get(change_url(checked))
    assert '<meta http-equiv="refresh" content="2">' in page.text


def test_a_file_is_checked_again_on_request(manager_client, funder):
    program = make_program(funder=funder, funded=1_000)
    post_upload(manager_client, program)
    allocation_import = AllocationImport.objects.get()
    assert allocation_import.status == Status.INVALID
    program_fund(program=program, amount=100_000, idempotency_key="more")
    manager_client.post(change_url(allocation_import, "recheck"))

    allocation_import.refresh_from_db()
    assert allocation_import.status == Status.CHECKED


def test_the_list_shows_past_imports_with_their_status(manager_client, checked):
    page = manager_client.get(LIST)
    assert page.status_code == 200
    assert "valid.csv" in page.text
    assert checked.get_status_display() in page.text


# --- the template files --------------------------------------------------------------------------


def test_the_csv_template_has_the_expected_headers(manager_client):
    response = manager_client.get(
        reverse("admin:funders_allocationimport_template", args=["csv"]),
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert response.status_code == 200
    header = next(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert header[:3] == ["reference", "first_name", "last_name"]
    assert "amount" in header and "valid_until" in header


def test_the_xlsx_template_filled_in_is_accepted(manager_client, program):
    # given the template, downloaded in French and filled with one row
    response = manager_client.get(
        reverse("admin:funders_allocationimport_template", args=["xlsx"]),
        HTTP_ACCEPT_LANGUAGE="fr",
    )
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    sheet = book.active
    headers = [cell.value for cell in sheet[1]]
    assert headers[:3] == ["numero_dossier", "prenom", "nom"]
    values = {"prenom": "Anne", "nom": "Durand", "email": "anne@example.org"}
    values |= {"montant": "40", "debut": "01/12/2026"}
    sheet.append([values.get(header) for header in headers])
    out = io.BytesIO()
    book.save(out)
    # when it is sent
    post_upload(manager_client, program, file("filled.xlsx", out.getvalue()))
    # then it is checked without errors
    assert AllocationImport.objects.get().status == Status.CHECKED


@pytest.mark.parametrize("extension", ["pdf", "csv.exe"])
def test_an_unknown_template_format_is_not_found(manager_client, extension):
    url = reverse("admin:funders_allocationimport_template", args=[extension])
    assert manager_client.get(url).status_code == 404


# --- who reaches what ----------------------------------------------------------------------------


def test_an_agent_cannot_upload_nor_see_imports(agent_client, program, checked):
    assert agent_client.get(ADD).status_code == 403
    assert post_upload(agent_client, program).status_code == 403
    assert agent_client.get(LIST).status_code == 403
    # Imports are a manager's: to an agent, one answers as if it did not exist.
    assert agent_client.get(change_url(checked)).status_code == 404
    assert agent_client.post(change_url(checked, "confirm")).status_code == 404
    template = reverse("admin:funders_allocationimport_template", args=["csv"])
    assert agent_client.get(template).status_code == 403
    assert AllocationImport.objects.count() == 1


def test_another_funders_manager_cannot_reach_the_import(other_client, checked):
    assert other_client.get(change_url(checked)).status_code == 404
    assert other_client.post(change_url(checked, "confirm")).status_code == 404
    assert other_client.post(change_url(checked, "recheck")).status_code == 404
    list_page = other_client.get(LIST)
    assert list_page.status_code == 200
    assert "valid.csv" not in list_page.text
    checked.refresh_from_db()
    assert checked.status == Status.CHECKED


def test_another_funders_manager_cannot_pick_the_program(other_client, program):
    assert other_client.get(ADD, {"program": program.pk}).status_code == 404
    assert post_upload(other_client, program).status_code == 404
    assert not AllocationImport.objects.exists()


def test_an_operator_sees_every_funders_imports(client, operator, checked):
    client.force_login(operator)
    assert client.get(change_url(checked)).status_code == 200
