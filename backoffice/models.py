from django.db import models
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device


class Passkey(Device):
    """A passkey (WebAuthn credential) of a staff member: a second factor beside the
    authenticator app, kept by a phone, a computer or a security key. We keep its public key
    only; the private key never leaves the authenticator. As a django-otp device it marks the
    session verified like any other factor (backoffice.second_factor), though it answers a
    signed challenge instead of a typed code."""

    credential_id = models.BinaryField(_("credential id"), max_length=1023, unique=True)
    public_key = models.BinaryField(_("public key"))
    # The authenticator's own counter: a value that goes back means a cloned key.
    sign_count = models.PositiveBigIntegerField(_("signature count"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta(Device.Meta):
        verbose_name = _("passkey")
        verbose_name_plural = _("passkeys")

    def verify_token(self, token) -> bool:
        # A passkey signs a challenge (second_factor.passkey_verify); it never takes a code.
        return False
