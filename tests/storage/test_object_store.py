"""Every file a request or a task needs is kept where any app server and worker finds it: the
file storage (here an S3 bucket on a fake S3 server, through django-storages and boto3) or the
database, never one server's disk: MEDIA_ROOT stays empty in each test."""

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils.http import urlencode

from beneficiary_app.web.views import funder_logo_url
from core.storage import MAX_MEMORY_SIZE, ObjectStorage
from funders.models import Allocation, AllocationImport, ProgramExport
from merchants.models.settlement import SepaFile
from merchants.payments import payment_authorize
from merchants.settlement import sepa_file_build, settlement_close, settlement_until
from tests.factories import FunderFactory, make_merchant, make_payment_code, make_program

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8cfc0f01f0005000201a5c1e4d10000000049454e44ae426082"
)
PARIS = ZoneInfo("Europe/Paris")


def nothing_on_disk(settings) -> bool:
    media = Path(settings.MEDIA_ROOT)
    return not media.exists() or not any(media.rglob("*"))


def signed_in(user) -> Client:
    """A browser of its own: what one server's session knows, another's finds in the database."""
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def eager(settings):
    """Tasks run inline when queued, as a worker would run them."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True


# --- exports ---------------------------------------------------------------------------------


def test_an_export_built_by_the_task_lands_in_the_bucket_and_is_served_by_the_view(
    bucket, settings, funder, manager, eager, django_capture_on_commit_callbacks
):
    program = make_program(funder=funder, name="Aide alimentaire", funded=250_000)
    client = signed_in(manager)
    url = reverse("admin:funders_programdashboard_export", args=[program.pk, "statement", "csv"])
    today = date.today()
    query = {"from": (today - timedelta(days=7)).isoformat(), "to": today.isoformat()}

    # when the manager asks for it, the task builds it as the request commits
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"{url}?{urlencode(query)}").status_code == 302
    export = ProgramExport.objects.get()
    assert export.status == ProgramExport.Status.READY

    # then the file is an object of the bucket, and only there
    assert bucket.keys() == [export.file.name]
    assert export.file.name.startswith(f"exports/{program.pk}/")
    stored = bucket.read(export.file.name)
    assert "2500.00" in stored.decode("utf-8-sig")  # the program's funding, in euros
    assert nothing_on_disk(settings)

    # and the dashboard's link serves it from the bucket, to a session of another browser
    download = reverse("admin:funders_programdashboard_download", args=[program.pk, export.pk])
    response = signed_in(manager).get(download)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == stored
    assert response["Content-Disposition"].startswith("attachment;")


# --- logos -----------------------------------------------------------------------------------


def test_a_logo_is_stored_in_the_bucket_and_served_by_the_app(db, bucket, settings, client):
    funder = FunderFactory(name="Département de l'Isère")
    funder.logo.save("logo.png", ContentFile(PNG))

    assert bucket.keys() == [funder.logo.name]
    assert bucket.read(funder.logo.name) == PNG
    response = client.get(funder_logo_url(funder))
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == PNG
    assert nothing_on_disk(settings)


def test_two_logos_of_the_same_name_stay_two_files(db, bucket, client):
    # S3's default would overwrite the first "logo.png" with the second: one funder's logo
    # shown beside another's aid, under a URL that browsers cached for the first.
    isere, savoie = FunderFactory(), FunderFactory()
    isere.logo.save("logo.png", ContentFile(PNG))
    other = PNG.replace(b"\x01\x08\x06", b"\x01\x08\x02")  # another image of the same size
    savoie.logo.save("logo.png", ContentFile(other))

    assert isere.logo.name != savoie.logo.name
    assert len(bucket.keys()) == 2
    assert b"".join(client.get(funder_logo_url(isere)).streaming_content) == PNG
    assert b"".join(client.get(funder_logo_url(savoie)).streaming_content) == other


def test_the_object_storage_refuses_to_be_told_to_overwrite(fake_s3):
    options = fake_s3.options(fake_s3.bucket())

    with pytest.raises(ImproperlyConfigured, match="never overwrites"):
        ObjectStorage(**options, file_overwrite=True)
    assert ObjectStorage(**options).file_overwrite is False


def test_a_large_file_read_from_the_bucket_goes_to_a_temporary_file_not_memory(fake_s3):
    storage = ObjectStorage(**fake_s3.options(fake_s3.bucket()))
    small = storage.save("exports/small.csv", ContentFile(b"a,b\n" * 10))
    large = storage.save("exports/large.csv", ContentFile(b"x" * (MAX_MEMORY_SIZE + 1)))

    with storage.open(small) as file:
        assert file.read() == b"a,b\n" * 10
        assert not file.file._rolled  # SpooledTemporaryFile: still in memory
    with storage.open(large) as file:
        assert len(file.read()) == MAX_MEMORY_SIZE + 1
        assert file.file._rolled  # written out to a temporary file


# --- allocation imports ----------------------------------------------------------------------


def allocation_file(rows: int) -> bytes:
    lines = ["first_name,last_name,email,amount,valid_from"]
    lines += [f"Camille,Martin{n},camille{n}@example.org,10,2026-12-01" for n in range(rows)]
    return ("\n".join(lines) + "\n").encode()


@time_machine.travel(datetime(2026, 11, 23, 10, 0, tzinfo=PARIS))
def test_an_uploaded_allocation_file_is_read_back_by_the_worker_from_the_database(
    bucket, settings, funder, manager, eager, django_capture_on_commit_callbacks
):
    # The file's bytes are kept with the import's row, in the upload's transaction: the worker
    # that applies it, on whatever machine, reads them from there.
    program = make_program(funder=funder, funded=1_000_000)
    content = allocation_file(3)
    upload = SimpleUploadedFile("grants.csv", content, content_type="text/csv")
    response = signed_in(manager).post(
        reverse("admin:funders_allocationimport_add"), {"program": program.pk, "file": upload}
    )
    assert response.status_code == 302
    allocation_import = AllocationImport.objects.get()
    assert allocation_import.status == AllocationImport.Status.CHECKED
    assert bytes(allocation_import.content) == content

    # confirmed from another browser, applied by the worker
    confirm = reverse("admin:funders_allocationimport_confirm", args=[allocation_import.pk])
    with django_capture_on_commit_callbacks(execute=True):
        signed_in(manager).post(confirm)
    allocation_import.refresh_from_db()
    assert allocation_import.status == AllocationImport.Status.APPLIED
    granted = Allocation.objects.filter(program=program).order_by("pk")
    assert [a.beneficiary.last_name for a in granted] == ["Martin0", "Martin1", "Martin2"]
    assert bucket.keys() == []
    assert nothing_on_disk(settings)


# --- settlement: statements and SEPA files ---------------------------------------------------


@pytest.fixture
def debtor(settings):
    settings.SEPA_DEBTOR_NAME = "Opérateur Aidwallet SAS"
    settings.SEPA_DEBTOR_IBAN = "FR76 3000 1007 9412 3456 7890 185"
    settings.SEPA_DEBTOR_BIC = "BDFEFRPP"


def test_a_sepa_file_and_a_statement_are_served_by_any_server_from_the_database(
    bucket, settings, debtor, pocket, operator
):
    day0 = settlement_until() + timedelta(days=1)
    shop = make_merchant(iban="FR14 2004 1010 0505 0001 3M02 606", bic="PSSTFRPP")
    with time_machine.travel(day0 + timedelta(hours=9), tick=False):
        payment_authorize(
            merchant=shop,
            amount=1_234,
            currency="EUR",
            payment_code=make_payment_code(pocket.wallet),
            capture=True,
        )
    batch = settlement_close(merchant=shop, currency="EUR", until=day0 + timedelta(days=1))
    sepa_file = sepa_file_build(payouts=[batch.payout], execution_date=date(2027, 1, 4))
    client = signed_in(operator)

    # the pain.001 file was kept with the payouts it sends, in the same transaction
    response = client.get(reverse("admin:merchants_sepafile_download", args=[sepa_file.pk]))
    assert response.status_code == 200
    assert response.content.decode() == SepaFile.objects.get().content
    assert '<InstdAmt Ccy="EUR">12.34</InstdAmt>' in response.content.decode()

    # and a statement is written from the ledger at each request
    response = client.get(reverse("admin:merchants_settlementbatch_statement_csv", args=[batch.pk]))
    assert response.status_code == 200
    assert batch.reference in response.content.decode("utf-8-sig")
    assert bucket.keys() == []
    assert nothing_on_disk(settings)
