"""The second factor of everyone who signs in to the admin: funders' staff and platform operators.

After the password, the admin asks for a code from an authenticator app (TOTP, django-otp), one of
the person's recovery codes (django-otp static tokens, each good once), or their passkey
(WebAuthn, backoffice.models.Passkey). Someone with no factor yet sets up an authenticator app
first, and is shown their recovery codes once. backoffice.middleware.SecondFactorRequired keeps
every other admin page closed until one of them is given: the session is then "verified"
(django_otp.login), for as long as it lasts.

An administrator of a funder may reset the factors of a colleague of that funder who lost them
(an operator anyone's): every factor goes, the colleague sets up a new one at the next sign-in,
and the reset is written to the admin's log of that person and to the logs."""

import base64
import json
import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from webauthn import (
    base64url_to_bytes,
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import AuthenticatorSelectionCriteria as Selection
from webauthn.helpers.structs import (
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from backoffice.models import Passkey
from core.errors import DomainError

logger = logging.getLogger(__name__)

APP_DEVICE_NAME = "authenticator app"
RECOVERY_DEVICE_NAME = "recovery codes"
RECOVERY_CODES = 10


class PasskeyRefused(DomainError):
    code = "passkey_refused"
    default_message = _("The passkey's answer was not accepted. Try again, or type a code.")


def has_factor(user: AbstractBaseUser) -> bool:
    """Whether the person has set up a second factor: an authenticator app or a passkey
    (recovery codes alone are a way back in, not a factor of their own)."""
    return (
        TOTPDevice.objects.filter(user=user, confirmed=True).exists()
        or Passkey.objects.filter(user=user, confirmed=True).exists()
    )


def app_setup_start(*, user: AbstractBaseUser) -> TOTPDevice:
    """The authenticator app being set up: a new secret, unconfirmed until the person types a
    first code from it (app_setup_confirm). Started again, the same secret is shown, so that a
    page reloaded does not break an app already scanned."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").last()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=APP_DEVICE_NAME, confirmed=False)
    return device


def app_key_base32(device: TOTPDevice) -> str:
    """The secret as people type it into an app, in groups of four."""
    text = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(text[i : i + 4] for i in range(0, len(text), 4))


def app_setup_confirm(*, device: TOTPDevice, code: str) -> list[str] | None:
    """Confirm the app being set up with a first code from it: the app becomes the person's
    factor and they get new recovery codes, returned to be shown once. None when the code is
    wrong."""
    with transaction.atomic():
        if not device.verify_token(_digits(code)):
            return None
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        return recovery_codes_renew(user=device.user)


def recovery_codes_renew(*, user: AbstractBaseUser) -> list[str]:
    """New recovery codes for the person, the old ones no longer working: each opens one
    sign-in, for the day the phone is lost."""
    with transaction.atomic():
        device, _ = StaticDevice.objects.get_or_create(
            user=user, name=RECOVERY_DEVICE_NAME, defaults={"confirmed": True}
        )
        device.token_set.all().delete()
        codes = [StaticToken.random_token() for _ in range(RECOVERY_CODES)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
    return codes


def _digits(code: str) -> str:
    return "".join(char for char in code if not char.isspace())


def code_verify(*, user: AbstractBaseUser, code: str) -> TOTPDevice | StaticDevice | None:
    """The factor that accepts `code`: the authenticator app's code of the moment, or one of
    the recovery codes (used up). Each device counts its failures and makes the person wait
    longer after each one (django-otp's throttling), so codes cannot be tried by the thousand."""
    code = _digits(code).lower()
    if not code:
        return None
    with transaction.atomic():
        devices: list[TOTPDevice | StaticDevice] = [
            *TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True),
            *StaticDevice.objects.select_for_update().filter(user=user, confirmed=True),
        ]
        for device in devices:
            if device.verify_token(code):
                if isinstance(device, StaticDevice):
                    logger.warning("user %s signed in with a recovery code", user.pk)
                return device
    logger.warning("user %s: wrong second-factor code", user.pk)
    return None


def second_factor_reset(*, user: AbstractBaseUser, by: AbstractBaseUser) -> int:
    """Remove every second factor of `user` (app, recovery codes, passkeys), at the request of
    `by`, who may not be `user` (nor a funder's administrator resetting an operator): a
    colleague who lost their phone sets up a new factor at their next sign-in, and any session
    of theirs verified with a factor removed is no longer verified. Written to the admin's log
    of `user`. Returns how many factors were removed."""
    if user.pk == by.pk:
        raise DomainError(_("You cannot reset your own second factor: ask a colleague."))
    if user.is_superuser and not by.is_superuser:
        # A funder's administrator does not lower the guard of the platform's operators.
        raise DomainError(_("Only a platform operator can reset an operator's second factor."))
    with transaction.atomic():
        removed = 0
        for model in (TOTPDevice, StaticDevice, Passkey):
            removed += model.objects.filter(user=user).delete()[1].get(model._meta.label, 0)
        LogEntry.objects.log_actions(
            user_id=by.pk,
            queryset=[user],
            action_flag=CHANGE,
            change_message=f"Second factor reset ({removed} removed).",
            single_object=True,
        )
    logger.warning("user %s: second factor reset by user %s (%s removed)", user.pk, by.pk, removed)
    return removed


def totp_now(device: TOTPDevice) -> str:
    """The code the person's app shows now: what tests and the demo type."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"


# Passkeys (WebAuthn). The ceremony's challenge is kept in the session between the options
# and the browser's answer.

_CHALLENGE = "passkey_challenge"


def _relying_party(request) -> tuple[str, list[str]]:
    """The domain passkeys are bound to and the origins their answers may come from."""
    rp_id = settings.WEBAUTHN_RP_ID or urlsplit(f"//{request.get_host()}").hostname or ""
    origins = settings.WEBAUTHN_ORIGINS or [f"{request.scheme}://{request.get_host()}"]
    return rp_id, origins


def passkey_registration_options(*, request) -> str:
    user = request.user
    rp_id, _ = _relying_party(request)
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=settings.OTP_TOTP_ISSUER,
        user_name=user.get_username(),
        user_id=str(user.pk).encode(),
        user_display_name=user.get_full_name() or user.get_username(),
        exclude_credentials=[
            PublicKeyCredentialDescriptor(id=bytes(key.credential_id))
            for key in Passkey.objects.filter(user=user)
        ],
        authenticator_selection=Selection(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
    )
    request.session[_CHALLENGE] = bytes_to_base64url(options.challenge)
    return options_to_json(options)


def passkey_register(*, request, credential: dict, name: str) -> Passkey:
    """Keep the passkey the browser just made, once its answer to our challenge checks out.
    Raises PasskeyRefused otherwise."""
    challenge = request.session.pop(_CHALLENGE, None)
    rp_id, origins = _relying_party(request)
    if challenge is None:
        raise PasskeyRefused()
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=base64url_to_bytes(challenge),
            expected_rp_id=rp_id,
            expected_origin=origins,
        )
    except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as error:
        raise PasskeyRefused() from error
    return Passkey.objects.create(
        user=request.user,
        name=(name or "passkey")[:64],
        confirmed=True,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
    )


def passkey_authentication_options(*, request) -> str:
    rp_id, _ = _relying_party(request)
    options = generate_authentication_options(
        rp_id=rp_id,
        allow_credentials=[
            PublicKeyCredentialDescriptor(id=bytes(key.credential_id))
            for key in Passkey.objects.filter(user=request.user, confirmed=True)
        ],
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    request.session[_CHALLENGE] = bytes_to_base64url(options.challenge)
    return options_to_json(options)


def passkey_verify(*, request, credential: dict) -> Passkey:
    """The person's passkey that signed our challenge. Raises PasskeyRefused when the answer is
    not from one of their passkeys, does not check out, or its counter went back (a cloned
    authenticator)."""
    challenge = request.session.pop(_CHALLENGE, None)
    rp_id, origins = _relying_party(request)
    try:
        raw_id = base64url_to_bytes(credential["rawId"])
    except (KeyError, TypeError, ValueError) as error:
        raise PasskeyRefused() from error
    with transaction.atomic():
        passkey = (
            Passkey.objects.select_for_update()
            .filter(user=request.user, confirmed=True, credential_id=raw_id)
            .first()
        )
        if challenge is None or passkey is None:
            raise PasskeyRefused()
        try:
            verified = verify_authentication_response(
                credential=credential,
                expected_challenge=base64url_to_bytes(challenge),
                expected_rp_id=rp_id,
                expected_origin=origins,
                credential_public_key=bytes(passkey.public_key),
                credential_current_sign_count=passkey.sign_count,
            )
        except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError) as error:
            logger.warning("user %s: passkey answer refused", request.user.pk)
            raise PasskeyRefused() from error
        passkey.sign_count = verified.new_sign_count
        passkey.last_used_at = timezone.now()
        passkey.save(update_fields=["sign_count", "last_used_at"])
    return passkey


def passkey_credential(body: bytes) -> dict:
    """The browser's answer, as the page posts it: a JSON object, else PasskeyRefused."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise PasskeyRefused() from None
    if not isinstance(data, dict):
        raise PasskeyRefused()
    return data


def safe_next(request, default: str) -> str:
    """Where to go after the second factor: the page asked for, if it is on this site."""
    url = request.POST.get("next") or request.GET.get("next")
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return default
