"""The message that tells a person of new aid: the app's link in every one, the last day of
validity said as a whole day, and the funder as the sender of the email."""

from datetime import datetime
from email.header import decode_header, make_header
from zoneinfo import ZoneInfo

import pytest
from django.core import mail

from notifications.channels import sender
from notifications.services import allocation_notify, notification_send
from tests.factories import BeneficiaryFactory, FunderFactory, make_allocation, make_program
from wallet.models.notifications import Notification

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
APP_URL = "https://aides.example.fr/app/"


@pytest.fixture
def granted(settings):
    settings.APP_URL = APP_URL
    settings.DEFAULT_FROM_EMAIL = "Aid wallet <no-reply@aides.example.fr>"
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.SMS_BACKEND = "notifications.channels.OutboxSMSBackend"
    funder = FunderFactory(name="Département de l'Isère")
    program = make_program(funder=funder, name="Aide alimentaire")
    person = BeneficiaryFactory(
        first_name="Camille", email="camille@example.org", phone="+33612345678"
    )
    allocation = make_allocation(
        program=program,
        beneficiary=person,
        amount=5_000,
        valid_from=datetime(2026, 12, 1, tzinfo=PARIS),
        valid_until=datetime(2027, 10, 1, tzinfo=PARIS),  # the whole of 30 September
    )
    return {n.channel: n for n in allocation_notify(allocation=allocation)}


def test_the_sms_carries_the_link_and_the_last_day_included(granted):
    sms = granted[Notification.Channel.SMS].body

    grant = (
        "Bonjour Camille, le Département de l'Isère vous accorde 50,00 € (Aide alimentaire) "
        f"jusqu'au 30 septembre 2027 inclus. Votre aide : {APP_URL}"
    )
    # The first message to a number also carries the information notice's link (gdpr).
    assert sms.startswith(grant)
    assert "/app/privacy/" in sms[len(grant) :]
    assert len(grant) <= 160
    assert "1 octobre" not in sms


def test_the_email_carries_the_link_and_comes_from_the_funder(granted):
    row = granted[Notification.Channel.EMAIL]
    assert "Le Département de l'Isère vous accorde une aide de 50,00" in row.body
    assert "jusqu\u2019au 30 septembre 2027 inclus" in row.body
    assert f"{APP_URL}\n" in row.body  # then, in a first message, the notice's link

    notification_send(notification_id=row.pk)

    [email] = mail.outbox
    assert email.from_email == '"Département de l\'Isère" <no-reply@aides.example.fr>'
    header = str(make_header(decode_header(email.message()["From"])))
    assert header == "Département de l'Isère <no-reply@aides.example.fr>"


def test_a_message_about_no_funder_keeps_the_platforms_sender(settings):
    settings.DEFAULT_FROM_EMAIL = "Mes aides <no-reply@aides.example.fr>"
    assert sender(Notification(funder=None)) == "Mes aides <no-reply@aides.example.fr>"
