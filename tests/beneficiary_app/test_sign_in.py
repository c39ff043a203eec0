from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from django.utils.crypto import salted_hmac

from beneficiary_app.services import MAX_WRONG_TRIES, app_token_expires_at
from merchants.services import api_key_create
from tests.beneficiary_app.conftest import AppClient, error_code, last_code
from wallet.models import Notification
from wallet.models.access import AppToken, SignInCode

EMAIL = "marie.dupont@example.org"
PHONE = "+33612345678"


def ask_code(client, contact: str):
    return client.send("/auth/code", {"contact": contact})


def sign_in(client, contact: str, code: str, **extra):
    return client.send("/auth/token", {"contact": contact, "code": code}, **extra)


@pytest.fixture
def signed_in(anonymous, beneficiary):
    """Sign in by email as the beneficiary; returns the token response."""
    assert ask_code(anonymous, EMAIL).status_code == 202
    response = sign_in(anonymous, EMAIL, last_code(EMAIL))
    assert response.status_code == 200, response.content
    return response.json()


def test_a_known_email_gets_a_code_by_email_only(anonymous, beneficiary):
    response = ask_code(anonymous, "  Marie.Dupont@EXAMPLE.org ")

    assert response.status_code == 202
    [message] = Notification.objects.filter(kind=Notification.Kind.SIGN_IN_CODE)
    assert (message.channel, message.recipient) == ("email", EMAIL)
    assert message.beneficiary == beneficiary
    code = SignInCode.objects.get()
    assert message.dedupe_key == f"sign_in_code:{code.pk}:email"
    assert len(last_code(EMAIL)) == 6


def test_a_known_phone_gets_a_code_by_sms_only(anonymous, beneficiary):
    response = ask_code(anonymous, "06 12 34 56 78")

    assert response.status_code == 202
    [message] = Notification.objects.filter(kind=Notification.Kind.SIGN_IN_CODE)
    assert (message.channel, message.recipient) == ("sms", PHONE)


def test_each_code_has_its_own_message(anonymous, beneficiary):
    ask_code(anonymous, EMAIL)
    ask_code(anonymous, EMAIL)

    keys = Notification.objects.filter(kind="sign_in_code").values_list("dedupe_key", flat=True)
    assert len(set(keys)) == 2


def test_an_unknown_contact_gets_the_same_answer_and_nothing_is_sent(anonymous, beneficiary):
    known = ask_code(anonymous, EMAIL)
    unknown = ask_code(anonymous, "nobody@example.org")

    assert unknown.status_code == known.status_code == 202
    assert unknown.json() == known.json()
    assert SignInCode.objects.filter(contact="nobody@example.org").count() == 0
    assert Notification.objects.filter(recipient="nobody@example.org").count() == 0


def test_a_contact_that_is_neither_email_nor_phone_is_refused(anonymous, db):
    response = ask_code(anonymous, "not a contact")

    assert response.status_code == 400
    assert error_code(response) == "invalid_contact"


def test_the_code_is_stored_hashed(anonymous, beneficiary):
    ask_code(anonymous, EMAIL)
    code = last_code(EMAIL)

    row = SignInCode.objects.get()
    stored = [str(getattr(row, f.attname)) for f in SignInCode._meta.concrete_fields]
    assert not any(code in value for value in stored)
    expected = salted_hmac("wallet.app.SignInCode.digest", f"{EMAIL}:{code}", algorithm="sha256")
    assert row.digest == expected.hexdigest()


def test_the_right_code_gives_a_token_for_the_wallet(signed_in, beneficiary):
    assert signed_in["read_only"] is False
    assert signed_in["wallet_holder"] == "Marie"
    assert signed_in["other_wallets"] == []
    token = AppToken.objects.get()
    assert token.wallet == beneficiary.wallet
    assert token.digest == AppToken.digest_of(signed_in["token"])
    assert signed_in["token"] not in token.digest

    client = AppClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {signed_in['token']}")
    assert client.read("/me").json()["first_name"] == "Marie"


def test_a_code_works_only_once(anonymous, beneficiary):
    ask_code(anonymous, EMAIL)
    code = last_code(EMAIL)
    assert sign_in(anonymous, EMAIL, code).status_code == 200

    again = sign_in(anonymous, EMAIL, code)

    assert again.status_code == 400
    assert error_code(again) == "invalid_code"


def test_an_expired_code_is_refused(anonymous, beneficiary):
    ask_code(anonymous, EMAIL)
    code = last_code(EMAIL)

    with time_machine.travel(timezone.now() + timedelta(minutes=10, seconds=1)):
        response = sign_in(anonymous, EMAIL, code)

    assert response.status_code == 400
    assert error_code(response) == "invalid_code"


def test_a_code_still_works_just_before_it_expires(anonymous, beneficiary):
    ask_code(anonymous, EMAIL)
    code = last_code(EMAIL)

    with time_machine.travel(timezone.now() + timedelta(minutes=9, seconds=50)):
        assert sign_in(anonymous, EMAIL, code).status_code == 200


def test_a_wrong_code_is_refused_and_counted(anonymous, beneficiary):
    ask_code(anonymous, EMAIL)
    wrong = f"{(int(last_code(EMAIL)) + 1) % 1_000_000:06d}"

    response = sign_in(anonymous, EMAIL, wrong)

    assert response.status_code == 400
    assert error_code(response) == "invalid_code"
    assert SignInCode.objects.get().failed_attempts == 1


def test_a_code_dies_after_five_wrong_tries(anonymous, beneficiary):
    ask_code(anonymous, EMAIL)
    code = last_code(EMAIL)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(MAX_WRONG_TRIES):
        assert sign_in(anonymous, EMAIL, wrong).status_code == 400

    response = sign_in(anonymous, EMAIL, code)

    assert response.status_code == 400
    assert error_code(response) == "invalid_code"


def test_only_the_newest_code_works(anonymous, beneficiary):
    ask_code(anonymous, EMAIL)
    first = last_code(EMAIL)
    ask_code(anonymous, EMAIL)
    newest = last_code(EMAIL)

    if first != newest:
        assert error_code(sign_in(anonymous, EMAIL, first)) == "invalid_code"
    assert sign_in(anonymous, EMAIL, newest).status_code == 200


def test_wrong_expired_and_used_codes_get_the_same_message(anonymous, beneficiary):
    ask_code(anonymous, EMAIL)
    code = last_code(EMAIL)
    wrong = sign_in(anonymous, EMAIL, f"{(int(code) + 1) % 1_000_000:06d}").json()
    sign_in(anonymous, EMAIL, code)
    used = sign_in(anonymous, EMAIL, code).json()
    unknown = sign_in(anonymous, "nobody@example.org", "123456").json()

    assert wrong == used == unknown


def test_a_code_typed_with_spaces_works(anonymous, beneficiary):
    ask_code(anonymous, PHONE)
    code = last_code(PHONE)

    assert sign_in(anonymous, "06 12 34 56 78", f"{code[:3]} {code[3:]}").status_code == 200


def test_codes_are_throttled_per_contact(anonymous, beneficiary):
    for _ in range(5):
        assert ask_code(anonymous, EMAIL).status_code == 202

    response = ask_code(anonymous, EMAIL.upper())

    assert response.status_code == 429
    assert error_code(response) == "rate_limited"
    assert int(response["Retry-After"]) > 0
    assert SignInCode.objects.count() == 5


def test_unknown_contacts_are_throttled_alike(anonymous, db):
    statuses = [ask_code(anonymous, "nobody@example.org").status_code for _ in range(6)]

    assert statuses == [202] * 5 + [429]


def test_verifications_are_throttled_per_address(anonymous, beneficiary):
    for _ in range(20):
        sign_in(anonymous, "nobody@example.org", "123456")

    response = sign_in(anonymous, EMAIL, "123456")

    assert response.status_code == 429
    assert "Retry-After" in response
    other_address = AppClient(REMOTE_ADDR="10.0.0.2")
    assert sign_in(other_address, EMAIL, "123456").status_code == 400


def test_a_forwarded_for_header_does_not_escape_the_throttle(anonymous, beneficiary):
    for n in range(20):
        sign_in(anonymous, EMAIL, "123456", HTTP_X_FORWARDED_FOR=f"10.1.0.{n}")

    response = sign_in(anonymous, EMAIL, "123456", HTTP_X_FORWARDED_FOR="10.1.1.1")

    assert response.status_code == 429


def test_signing_out_revokes_this_token_only(beneficiary):
    phone, tablet = AppClient(beneficiary.wallet), AppClient(beneficiary.wallet)

    assert phone.send("/auth/sign-out").status_code == 204

    assert phone.read("/me").status_code == 401
    assert tablet.read("/me").status_code == 200


def test_signing_out_everywhere_revokes_every_token_of_the_wallet(beneficiary, other_beneficiary):
    phone, tablet = AppClient(beneficiary.wallet), AppClient(beneficiary.wallet)
    someone_else = AppClient(other_beneficiary.wallet)

    assert phone.send("/auth/sign-out-everywhere").status_code == 204

    assert phone.read("/me").status_code == 401
    assert error_code(tablet.read("/me")) == "authentication_failed"
    assert someone_else.read("/me").status_code == 200


def test_a_token_unused_for_90_days_stops_working(beneficiary):
    client = AppClient(beneficiary.wallet)
    later = timezone.now() + timedelta(days=89)
    with time_machine.travel(later):
        assert client.read("/me").status_code == 200  # each use pushes the expiry back

    with time_machine.travel(later + timedelta(days=89)):
        assert client.read("/me").status_code == 200
    with time_machine.travel(later + timedelta(days=89 + 91)):
        response = client.read("/me")

    assert response.status_code == 401


def test_a_token_in_steady_use_stops_working_at_its_greatest_age(beneficiary):
    client = AppClient(beneficiary.wallet)
    made = client.token.created_at
    for day in range(80, 180, 80):  # used every 80 days: never idle
        with time_machine.travel(made + timedelta(days=day)):
            assert client.read("/me").status_code == 200

    with time_machine.travel(made + timedelta(days=180, seconds=1)):
        response = client.read("/me")

    assert response.status_code == 401
    assert error_code(response) == "authentication_failed"


def test_a_new_token_says_when_its_greatest_age_ends_it(beneficiary, settings):
    settings.APP_TOKEN_MAX_AGE_DAYS = 30
    client = AppClient(beneficiary.wallet)

    assert app_token_expires_at(client.token) == client.token.created_at + timedelta(days=30)


def test_no_token_answers_401(anonymous):
    response = anonymous.read("/pockets")

    assert response.status_code == 401
    assert error_code(response) == "authentication_required"
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_merchant_api_key_is_not_an_app_token(beneficiary, grocer):
    client = AppClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_create(merchant=grocer, name='k')[1]}")

    assert client.read("/me").status_code == 401
