"""How a card payment is tied to one of our merchants: the card network names the shop by its
acquirer's merchant id and a terminal id, which we learn at onboarding or from the operator's
queue of card payments made at shops no merchant of ours was known by."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from merchants.validators import validate_network_id, validate_terminal_id


class CardAcceptorQuerySet(models.QuerySet):
    def overlapping(self, *, network_id: str, terminal_id: str) -> "CardAcceptorQuerySet":
        """The acceptors that would match a card payment this one matches: the same network
        id, with the same terminal or with either one standing for every terminal."""
        terminals = Q(terminal_id__in=[terminal_id, ""]) if terminal_id else Q()
        return self.filter(terminals, network_id=network_id)


class CardAcceptor(models.Model):
    """One of a merchant's identities on the card network. A card payment from this network id
    (and this terminal, when one is given) is a payment at this merchant, decided with its
    registered place and category as on the merchant API."""

    class How(models.TextChoices):
        ONBOARDING = "onboarding", _("Given in the merchant's application")
        ADMIN = "admin", _("Entered by an operator")
        QUEUE = "queue", _("Learned from an unknown card acceptor")

    merchant = models.ForeignKey(
        "merchants.Merchant", models.CASCADE, related_name="card_acceptors"
    )
    network_id = models.CharField(
        _("card network merchant id"), max_length=35, validators=[validate_network_id]
    )
    terminal_id = models.CharField(
        _("terminal id"),
        max_length=16,
        blank=True,
        validators=[validate_terminal_id],
        help_text=_("Leave empty for every terminal of this merchant id."),
    )
    how = models.CharField(_("how it was learned"), max_length=16, choices=How.choices)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )

    objects = CardAcceptorQuerySet.as_manager()

    class Meta:
        verbose_name = _("card acceptor")
        verbose_name_plural = _("card acceptors")
        ordering = ["network_id", "terminal_id"]
        constraints = [
            models.UniqueConstraint(fields=["network_id", "terminal_id"], name="card_acceptor_ids")
        ]

    def __str__(self) -> str:
        return f"{self.network_id} / {self.terminal_id}" if self.terminal_id else self.network_id

    def clean(self) -> None:
        # Two merchants may share a network id (a payment facilitator's) only terminal by
        # terminal: otherwise one card payment would be two merchants' at once.
        taken = (
            CardAcceptor.objects.overlapping(
                network_id=self.network_id, terminal_id=self.terminal_id
            )
            .exclude(merchant_id=self.merchant_id)
            .exclude(pk=self.pk)
        )
        if self.network_id and taken.exists():
            taken_error = ValidationError(CARD_ACCEPTOR_TAKEN, code="card_acceptor_taken")
            raise ValidationError({"network_id": taken_error})


CARD_ACCEPTOR_TAKEN = _(
    "This card network merchant id (or this terminal) is already another merchant's. Contact "
    "the platform if it is yours."
)


class UnknownCardAcceptor(models.Model):
    """The operator's queue: card payments from a shop that matched none of our merchants,
    one row per network id, terminal and currency, with what the network says of the shop.
    Counted at each such authorization, in its decision's transaction; removed once an
    operator says which merchant it is."""

    network_id = models.CharField(_("card network merchant id"), max_length=35)
    terminal_id = models.CharField(_("terminal id"), max_length=16, blank=True)
    currency = models.CharField(_("currency"), max_length=3)
    name = models.CharField(_("name"), max_length=200, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    postcode = models.CharField(_("postcode"), max_length=10, blank=True)
    mcc = models.CharField(_("merchant category code"), max_length=4, blank=True)
    count = models.PositiveIntegerField(_("authorizations"), default=0)
    amount = models.BigIntegerField(_("amount asked"), default=0)
    first_seen = models.DateTimeField(_("first seen"), auto_now_add=True)
    last_seen = models.DateTimeField(_("last seen"), db_index=True)

    class Meta:
        verbose_name = _("unknown card acceptor")
        verbose_name_plural = _("unknown card acceptors")
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["network_id", "terminal_id", "currency"], name="unknown_card_acceptor"
            )
        ]

    def __str__(self) -> str:
        return self.name or self.network_id
