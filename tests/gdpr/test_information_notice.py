"""The beneficiary's information notice (GDPR articles 13 and 14): a page of the app, readable
without signing in, in the person's language, and linked from the first message each email
address or phone number receives (notifications/privacy.py)."""

import pytest
from django.test import Client
from django.urls import reverse

from beneficiary_app.services import contact_parse, sign_in_code_request
from tests.factories import BeneficiaryFactory, make_allocation
from wallet.models.notifications import Notification

Channel = Notification.Channel

pytestmark = pytest.mark.django_db


def test_the_notice_says_who_what_why_how_long_and_the_rights(settings):
    settings.DPO_CONTACT = "dpo@isere.fr"
    page = Client().get(reverse("mobile:privacy"), headers={"accept-language": "fr"})
    assert page.status_code == 200
    text = page.content.decode()
    for words in (
        "Vos données personnelles",
        "responsable du traitement",  # who
        "Ce que nous détenons sur vous",  # what
        "article 6.1.e du RGPD",  # why
        "Combien de temps",
        "dix ans",  # the ledger, as accounting law requires
        "Vos droits",
        "CNIL",
        "dpo@isere.fr",
        "STOP",
    ):
        assert words in text, words
    assert "Content-Security-Policy" in page.headers


def test_the_app_links_to_the_notice():
    shell = Client().get(reverse("mobile:shell"))
    assert reverse("mobile:privacy").encode() in shell.content


def test_the_first_message_to_each_contact_links_to_the_notice_and_the_next_do_not(settings):
    settings.PUBLIC_URL = "https://aides.isere.fr"
    person = BeneficiaryFactory(
        phone="+33612345678", email="camille@example.org", preferred_language="fr"
    )
    make_allocation(beneficiary=person)
    make_allocation(beneficiary=person)
    link = "https://aides.isere.fr/app/privacy/"

    for channel in (Channel.EMAIL, Channel.SMS):
        first, second = Notification.objects.filter(channel=channel).order_by("pk")
        assert link in first.body and link not in second.body
    sms = Notification.objects.filter(channel=Channel.SMS).order_by("pk").first()
    assert "Vos données et vos droits" in sms.body

    # a sign-in code to a contact never written to is a first message too
    other = BeneficiaryFactory(email="nadia@example.org")
    sign_in_code_request(contact=contact_parse("nadia@example.org"))
    code = Notification.objects.get(beneficiary=other, kind=Notification.Kind.SIGN_IN_CODE)
    assert link in code.body
