"""What a person trying the demo sees: aid valid for whole days, mobile numbers and e-mail
addresses as people have them (no accents), a funder to call, and a sign-in code the demo can
print."""

import re
from datetime import time

from django.utils import timezone

from beneficiary_app.services import contact_parse, sign_in_code_issue, sign_in_code_verify
from core.phones import format_phone
from demo.build import demo_build
from funders.models import Allocation, Funder
from wallet.models import Beneficiary


def test_the_demos_aid_runs_for_whole_days_and_its_people_are_plausible(db):
    demo_build(password="demo-password")

    for allocation in Allocation.objects.exclude(valid_until=None):
        assert timezone.localtime(allocation.valid_from).time() == time(0, 0)
        assert timezone.localtime(allocation.valid_until).time() == time(0, 0)
    for person in Beneficiary.objects.all():
        assert re.fullmatch(r"[a-z0-9.-]+@[a-z0-9.-]+", person.email), person.email
        assert re.fullmatch(r"0[67]( \d\d){4}", format_phone(person.phone)), person.phone
    funder = Funder.objects.get(name="Département de l'Isère")
    assert format_phone(funder.contact_phone) == "04 65 71 38 38"


def test_the_demo_can_print_a_sign_in_code_that_works(db):
    access = demo_build(password="demo-password")
    contact = contact_parse(format_phone(access.wallet.beneficiary.phone))

    _code, digits = sign_in_code_issue(contact=contact)

    [(token, _secret)] = sign_in_code_verify(contact=contact, code=digits)
    assert token.wallet == access.wallet
