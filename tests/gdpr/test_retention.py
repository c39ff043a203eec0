"""The retention schedule (docs/RETENTION.md) is enforced at its dates, time travelled with
time_machine: what passed its date goes, what did not stays, every run is audited, and the
ledger and payment decisions are never touched."""

import os
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from axes.models import AccessFailureLog
from django.core.files.base import ContentFile
from django.core.management import call_command

from beneficiary_app.services import contact_parse, sign_in_code_request, sign_in_code_verify
from funders.models import AllocationImport, BeneficiaryProfile, Enrolment, ProgramExport
from funders.services import allocation_revoke, beneficiary_enrol
from gdpr.models import RetentionPurge
from gdpr.retention import RULES, retention_enforce
from ledger.models import Entry, Transfer
from merchants.payments import payment_authorize
from tests.factories import (
    BeneficiaryFactory,
    FunderFactory,
    make_allocation,
    make_merchant,
    make_payment_code,
    make_program,
)
from wallet.models import Beneficiary, Decision
from wallet.models.access import AppToken, SignInCode
from wallet.models.notifications import Notification

PARIS = ZoneInfo("Europe/Paris")
START = datetime(2027, 1, 10, 12, 0, tzinfo=PARIS)

pytestmark = pytest.mark.django_db


def later(**delta):
    return time_machine.travel(START + timedelta(**delta), tick=False)


@pytest.fixture(autouse=True)
def _start(time_machine):
    time_machine.move_to(START, tick=False)


def test_every_rule_runs_and_is_audited_even_when_it_purges_nothing():
    done = retention_enforce()
    assert set(done) == set(RULES)
    assert set(RetentionPurge.objects.values_list("rule", flat=True)) == set(RULES)
    assert all(purge.count == 0 for purge in RetentionPurge.objects.all())


def test_sign_in_codes_their_messages_and_ended_sessions_go_at_their_dates():
    person = BeneficiaryFactory(email="camille@example.org")
    contact = contact_parse("camille@example.org")
    sign_in_code_request(contact=contact)
    message = Notification.objects.get(kind=Notification.Kind.SIGN_IN_CODE)
    digits = next(word for word in message.body.split() if word.isdigit() and len(word) == 6)
    [(token, _secret)] = sign_in_code_verify(contact=contact, code=digits)
    sign_in_code_request(contact=contact)  # a second code, never used

    # the same day: nothing is due
    assert retention_enforce()["sign_in_codes"] == 0
    assert SignInCode.objects.count() == 2

    with later(days=2):
        done = retention_enforce()
        assert done["sign_in_codes"] == 2 and not SignInCode.objects.exists()
        assert done["sign_in_messages"] == 2
        message.refresh_from_db()
        assert message.body == "" and message.subject == ""
        # the session is still in use: it stays
        assert AppToken.objects.filter(pk=token.pk).exists()

    token.revoked_at = START + timedelta(days=3)
    token.save()
    with later(days=3 + 29):
        assert retention_enforce()["app_tokens"] == 0
    with later(days=3 + 31):
        assert retention_enforce()["app_tokens"] == 1
        assert not AppToken.objects.exists()
        purge = RetentionPurge.objects.filter(rule="app_tokens").order_by("-ran_at").first()
        assert purge.count == 1
    assert Beneficiary.objects.filter(pk=person.pk, erased_at__isnull=True).exists()


def test_outbox_texts_go_after_a_year_the_record_of_sending_stays():
    person = BeneficiaryFactory(email="camille@example.org")
    make_allocation(beneficiary=person)
    message = Notification.objects.get(kind=Notification.Kind.ALLOCATION_GRANTED)
    Notification.objects.filter(pk=message.pk).update(
        status=Notification.Status.SENT, next_attempt_at=None
    )

    with later(days=364):
        assert retention_enforce()["outbox_texts"] == 0
    with later(days=366):
        assert retention_enforce()["outbox_texts"] == 1
    message.refresh_from_db()
    assert (message.subject, message.body, message.recipient) == ("", "", "")
    assert (message.kind, message.status) == (
        Notification.Kind.ALLOCATION_GRANTED,
        Notification.Status.SENT,
    )


def test_admin_sign_in_records_go_after_six_months():
    AccessFailureLog.objects.create(username="x", ip_address="192.0.2.1", user_agent="ua")
    with later(days=179):
        assert retention_enforce()["access_logs"] == 0
    with later(days=181):
        assert retention_enforce()["access_logs"] == 1
    assert not AccessFailureLog.objects.exists()


def test_import_files_are_emptied_after_three_months():
    program = make_program()
    upload = AllocationImport.objects.create(
        program=program,
        filename="beneficiaires.csv",
        content=b"nom,email\nMartin,camille@example.org\n",
        digest="0" * 64,
        report=[{"row": 1, "name": "Martin"}],
    )
    with later(days=89):
        assert retention_enforce()["import_files"] == 0
    with later(days=91):
        assert retention_enforce()["import_files"] == 1
    upload.refresh_from_db()
    assert bytes(upload.content) == b"" and upload.report == []


def test_export_files_and_their_rows_go_after_a_month(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    program = make_program()

    def export(kind: str) -> ProgramExport:
        made = ProgramExport.objects.create(
            program=program, kind=kind, file_format="csv", period_start=START, period_end=START
        )
        made.file.save(f"{kind}.csv", ContentFile(b"Martin,Camille\r\n"))
        return made

    old = export("allocations")
    broken = ProgramExport.objects.create(  # its task failed: a row without a file
        program=program, kind="payments", file_format="csv", period_start=START, period_end=START
    )
    path = old.file.path
    with later(days=10):
        recent = export("payments")
    with later(days=29):
        assert retention_enforce()["program_exports"] == 0
    with later(days=31):
        assert retention_enforce()["program_exports"] == 2
    assert not ProgramExport.objects.filter(pk__in=[old.pk, broken.pk]).exists()
    assert not os.path.exists(path)
    recent.refresh_from_db()
    assert os.path.exists(recent.file.path)
    with later(days=41):
        assert retention_enforce()["program_exports"] == 1
    assert not ProgramExport.objects.exists() and not os.path.exists(recent.file.path)


def test_stale_profiles_and_people_go_the_ledger_and_decisions_stay():
    funder = FunderFactory()
    program = make_program(funder=funder)
    # someone helped in January 2027, whose aid was revoked in February...
    gone = BeneficiaryFactory(last_name="Martin", email="martin@example.org")
    enrolment = beneficiary_enrol(funder=funder, beneficiary=gone)
    BeneficiaryProfile.objects.create(enrolment=enrolment, household_size=3, income_bracket=2)
    aid = make_allocation(program=program, beneficiary=gone, amount=5_000)
    merchant = make_merchant()
    payment_authorize(
        merchant=merchant,
        payment_code=make_payment_code(gone.wallet),
        amount=1_000,
        currency="EUR",
        capture=True,
        idempotency_key="pay-1",
    )
    # ... and someone still helped
    helped = BeneficiaryFactory(last_name="Durand")
    helped_enrolment = beneficiary_enrol(funder=funder, beneficiary=helped)
    BeneficiaryProfile.objects.create(enrolment=helped_enrolment, household_size=1)
    make_allocation(program=program, beneficiary=helped, days=None)

    with later(days=30):
        allocation_revoke(allocation=aid, reason="moved away")
    ledger_before = (Transfer.objects.count(), Entry.objects.count())
    decisions_before = Decision.objects.count()

    with later(days=30 + 729):
        assert retention_enforce()["stale_profiles"] == 0
    with later(days=30 + 731):
        assert retention_enforce()["stale_profiles"] == 1
        assert not BeneficiaryProfile.objects.filter(enrolment=enrolment).exists()
        assert BeneficiaryProfile.objects.filter(enrolment=helped_enrolment).exists()
        assert retention_enforce()["stale_people"] == 0
    with later(days=30 + 1096):
        done = retention_enforce()
        assert done["stale_people"] == 1

    gone.refresh_from_db()
    helped.refresh_from_db()
    assert gone.erased_at is not None and gone.email == "" and gone.last_name != "Martin"
    assert "Retention schedule" in gone.erasure_reason
    assert helped.erased_at is None and helped.last_name == "Durand"
    assert Enrolment.objects.filter(beneficiary=gone).exists()
    # the money history is whole
    assert (Transfer.objects.count(), Entry.objects.count()) == ledger_before
    assert Decision.objects.count() == decisions_before
    call_command("ledger", "verify")


def test_the_schedule_runs_every_night(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["enforce-retention"]
    assert entry["task"] == "gdpr.tasks.retention_enforce"
    from gdpr.tasks import retention_enforce as task

    assert set(task()) == set(RULES)
