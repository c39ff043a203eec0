"""Shop staff: the people of a merchant who use its till (/shop/). Each is a Django user that is
never staff (the admin refuses them) and has no funder membership: a shop member reaches only
their own shop's till, and a funder's staff never reach a till."""

import hashlib

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    # The owner runs the shop's account (team, bank details, settlements, API keys), with a
    # second factor; a cashier takes and refunds payments.
    OWNER = "owner", _("Owner")
    CASHIER = "cashier", _("Cashier")


class ShopMember(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="shop_member"
    )
    merchant = models.ForeignKey("merchants.Merchant", models.CASCADE, related_name="shop_members")
    # Signing in is by e-mail address, canonical (core.validators.email_canonical), one member
    # per address across all shops.
    email = models.EmailField(_("e-mail address"), unique=True)
    role = models.CharField(_("role"), max_length=8, choices=Role.choices)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("shop member")
        verbose_name_plural = _("shop members")
        ordering = ["merchant", "email"]

    def __str__(self) -> str:
        return self.email

    @property
    def is_owner(self) -> bool:
        return self.role == Role.OWNER


class ShopInvitation(models.Model):
    """A one-time link sent by e-mail: whoever opens it chooses their own password. Only the
    token's digest is kept."""

    merchant = models.ForeignKey("merchants.Merchant", models.CASCADE, related_name="invitations")
    email = models.EmailField(_("e-mail address"))
    role = models.CharField(_("role"), max_length=8, choices=Role.choices, default=Role.CASHIER)
    digest = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        ShopMember, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("shop invitation")
        verbose_name_plural = _("shop invitations")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.email

    @staticmethod
    def digest_of(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()


class TillSettings(models.Model):
    """How a shop's till takes payments. A shop without a row takes them in one step."""

    merchant = models.OneToOneField(
        "merchants.Merchant", models.CASCADE, related_name="till_settings"
    )
    # Two steps: the payment is approved (held) at the till, its money taken when the shop
    # captures it from the day's payments (e.g. once the order is ready).
    capture_later = models.BooleanField(_("capture later"), default=False)

    class Meta:
        verbose_name = _("till settings")
        verbose_name_plural = _("till settings")

    def __str__(self) -> str:
        return str(self.merchant)
