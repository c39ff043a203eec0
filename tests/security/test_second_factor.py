"""Staff sign in to the admin with a password AND a second factor (backoffice.second_factor);
wrong passwords lock the account and the address out (django-axes); an administrator resets a
colleague's factor, and the admin's log keeps it."""

import io
from datetime import timedelta

import pytest
import time_machine
from axes.models import AccessAttempt, AccessFailureLog
from django.contrib.admin.models import LogEntry
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from backoffice.models import Passkey
from backoffice.second_factor import totp_now
from funders.models import Membership
from tests.factories import give_second_factor, make_staff, second_factor_pass

pytestmark = pytest.mark.second_factor_not_given

ADMIN = "/admin/"


def sign_in(user, password="password", client=None, address="192.0.2.1"):
    client = client or Client(REMOTE_ADDR=address)
    answer = client.post(
        reverse("admin:login"),
        {"username": user.username, "password": password, "next": ADMIN},
        REMOTE_ADDR=address,
    )
    return client, answer


def test_a_password_alone_opens_no_admin_page(manager):
    client, answer = sign_in(manager)
    assert answer.status_code == 302  # the password was right

    for path in (ADMIN, reverse("admin:funders_program_changelist"), reverse("second-factor")):
        page = client.get(path)
        assert page.status_code == 302
        assert page["Location"].startswith(reverse("second-factor-verify") + "?next=")


def test_the_code_of_the_app_opens_the_admin_and_is_good_once(manager):
    client, _ = sign_in(manager)
    device = TOTPDevice.objects.get(user=manager)
    code = totp_now(device)

    wrong = client.post(reverse("second-factor-verify"), {"code": "000000", "next": ADMIN})
    assert wrong.status_code == 400
    assert client.get(ADMIN).status_code == 302

    # django-otp makes the person wait after a failure: a moment later, the right code
    with time_machine.travel(timezone.now() + timedelta(seconds=5), tick=True):
        device.refresh_from_db()
        code = totp_now(device)
        right = client.post(reverse("second-factor-verify"), {"code": code, "next": ADMIN})
        assert right.status_code == 302 and right["Location"] == ADMIN
        assert client.get(ADMIN).status_code == 200

        # the same code, seen by someone over the shoulder, does not open a second session
        other, _ = sign_in(manager)
        again = other.post(reverse("second-factor-verify"), {"code": code, "next": ADMIN})
        assert again.status_code == 400


def test_an_outside_next_address_is_not_followed(manager):
    client, _ = sign_in(manager)
    code = totp_now(TOTPDevice.objects.get(user=manager))
    answer = client.post(
        reverse("second-factor-verify"), {"code": code, "next": "https://evil.example/"}
    )
    assert answer["Location"] == ADMIN


def test_first_sign_in_sets_up_the_app_and_shows_recovery_codes_once(funder):
    person = make_staff(funder=funder)
    TOTPDevice.objects.filter(user=person).delete()
    client, _ = sign_in(person)
    assert client.get(ADMIN)["Location"].startswith(reverse("second-factor-setup"))

    page = client.get(reverse("second-factor-setup"))
    assert page.status_code == 200
    assert b"data:image/svg+xml" in page.content  # the QR code, drawn on our side
    device = TOTPDevice.objects.get(user=person, confirmed=False)

    answer = client.post(
        reverse("second-factor-setup"), {"code": totp_now(device), "next": ADMIN}, follow=True
    )
    codes = answer.context["codes"]
    assert len(codes) == 10
    assert client.get(ADMIN).status_code == 200
    # shown once
    assert client.get(reverse("second-factor-recovery-codes")).status_code == 302

    # a recovery code opens one sign-in, once
    other, _ = sign_in(person)
    assert other.post(reverse("second-factor-verify"), {"code": codes[0]}).status_code == 302
    assert other.get(ADMIN).status_code == 200
    third, _ = sign_in(person)
    assert third.post(reverse("second-factor-verify"), {"code": codes[0]}).status_code == 400


def test_someone_with_a_factor_cannot_add_one_on_a_password_alone(manager):
    client, _ = sign_in(manager)
    answer = client.get(reverse("second-factor-setup"))
    assert answer["Location"] == reverse("second-factor-verify")
    assert client.get(reverse("second-factor-passkey-add")).status_code == 302
    assert not TOTPDevice.objects.filter(user=manager, confirmed=False).exists()


def test_an_operator_needs_a_second_factor_too(operator):
    client, _ = sign_in(operator)
    assert client.get(ADMIN)["Location"].startswith(reverse("second-factor-verify"))


def test_a_wrong_passkey_answer_is_refused_with_a_code(manager):
    client, _ = sign_in(manager)
    client.get(reverse("second-factor-passkey-sign-in"))
    answer = client.post(
        reverse("second-factor-passkey-sign-in"),
        b'{"rawId": "AAAA", "response": {}}',
        content_type="application/json",
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "passkey_refused"
    assert client.get(ADMIN).status_code == 302


# --- lockout (django-axes) -------------------------------------------------------------------


def test_wrong_passwords_lock_the_account_out_from_any_address(manager, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        sign_in(manager, password="wrong", address=f"192.0.2.{attempt + 10}")
    # the right password, from yet another address, is refused now
    _, answer = sign_in(manager, address="198.51.100.7")
    assert answer.status_code == 429
    failures = AccessFailureLog.objects.filter(username=manager.username)
    # each wrong password, and the refused right one, are kept for the operators to read
    assert failures.count() == settings.AXES_FAILURE_LIMIT + 1
    assert failures.filter(locked_out=True, ip_address="198.51.100.7").exists()

    # and once the cool-off has passed, it works again
    with time_machine.travel(timezone.now() + timedelta(hours=1, minutes=1)):
        _, answer = sign_in(manager, address="198.51.100.7")
        assert answer.status_code == 302


def test_wrong_passwords_from_one_address_lock_that_address_out(manager, agent, settings):
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        sign_in(make_staff(username=f"guess{attempt}"), password="wrong", address="203.0.113.9")
    _, answer = sign_in(agent, address="203.0.113.9")
    assert answer.status_code == 429
    assert AccessAttempt.objects.filter(ip_address="203.0.113.9").exists()
    # the same person from elsewhere is not locked out
    _, answer = sign_in(agent, address="198.51.100.8")
    assert answer.status_code == 302


# --- reset by an administrator ---------------------------------------------------------------


def _reset(client, membership):
    return client.post(
        reverse("admin:funders_membership_changelist"),
        {"action": "second_factor_reset_action", "_selected_action": [membership.pk]},
        follow=True,
    )


def test_an_administrator_resets_a_colleagues_factor_and_it_is_logged(
    administrator, manager, funder
):
    admin_client = Client()
    admin_client.force_login(administrator)
    second_factor_pass(admin_client, administrator)
    Passkey.objects.create(
        user=manager, name="phone", confirmed=True, credential_id=b"x", public_key=b"y"
    )
    # the manager was signed in, verified, on their phone
    manager_client, _ = sign_in(manager)
    manager_client.post(
        reverse("second-factor-verify"), {"code": totp_now(TOTPDevice.objects.get(user=manager))}
    )
    assert manager_client.get(ADMIN).status_code == 200

    membership = Membership.objects.get(user=manager, funder=funder)
    answer = _reset(admin_client, membership)
    assert answer.status_code == 200

    assert not TOTPDevice.objects.filter(user=manager).exists()
    assert not StaticDevice.objects.filter(user=manager).exists()
    assert not Passkey.objects.filter(user=manager).exists()
    entry = LogEntry.objects.get(object_id=str(manager.pk), user=administrator)
    assert "Second factor reset" in entry.change_message
    # the session verified by the factor removed is verified no more: set up a new one
    assert manager_client.get(ADMIN)["Location"].startswith(reverse("second-factor-setup"))


def test_no_one_resets_their_own_factor_nor_another_funders_staff(
    administrator, other_manager, funder, other_funder
):
    client = Client()
    client.force_login(administrator)
    second_factor_pass(client, administrator)
    own = Membership.objects.get(user=administrator)
    _reset(client, own)
    assert TOTPDevice.objects.filter(user=administrator).exists()

    other = Membership.objects.get(user=other_manager)
    _reset(client, other)
    assert TOTPDevice.objects.filter(user=other_manager).exists()
    assert not LogEntry.objects.filter(object_id=str(other_manager.pk)).exists()


def test_an_operator_resets_an_operators_factor_from_the_server(operator, django_user_model):
    colleague = django_user_model.objects.create_superuser("ops2", "ops2@example.org", "password")
    give_second_factor(colleague)
    with pytest.raises(CommandError):
        call_command("second_factor_reset", "ops2", "--by", "ops2")
    call_command("second_factor_reset", "ops2", "--by", "operator", stdout=io.StringIO())
    assert not TOTPDevice.objects.filter(user=colleague).exists()
    assert LogEntry.objects.filter(object_id=str(colleague.pk), user=operator).exists()
