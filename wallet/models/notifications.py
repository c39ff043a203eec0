from django.db import models
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

ERROR_LENGTH = 500


class Notification(models.Model):
    """One message to one beneficiary on one channel: queued, then sent, failed or skipped.

    The outbox: written in the transaction of the event it tells about, sent after commit. The
    subject and body are the text as rendered at that time, in the beneficiary's language, and
    the recipient is the address or phone number it went to, even if the beneficiary's details
    change later."""

    class Kind(models.TextChoices):
        ALLOCATION_GRANTED = "allocation_granted", _("Aid granted")
        PAYMENT_APPROVED = "payment_approved", _("Payment accepted")
        PAYMENT_DECLINED = "payment_declined", _("Payment refused")
        LOW_BALANCE = "low_balance", _("Little money left on an aid")
        EXPIRY_REMINDER = "expiry_reminder", _("Aid ending in 7 days")
        BALANCE_REPLY = "balance_reply", _("Balance asked by SMS")
        SIGN_IN_CODE = "sign_in_code", _("Sign-in code")
        CONTACT_CHANGED = "contact_changed", _("Contact details changed")
        NON_USE = "non_use", _("Aid not used")
        NON_USE_AIDANT = "non_use_aidant", _("Aid not used (to the aidant)")

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        SMS = "sms", _("SMS")
        PUSH = "push", _("App notification")

    class Status(models.TextChoices):
        QUEUED = "queued", pgettext_lazy("notification", "Waiting to be sent")
        SENT = "sent", pgettext_lazy("notification", "Sent")
        FAILED = "failed", pgettext_lazy("notification", "Failed")
        SKIPPED = "skipped", pgettext_lazy("notification", "Not sent")

    class Delivery(models.TextChoices):
        """What the provider reported after the message left (its delivery reports, email
        tracking webhooks): none yet is "". A bounce, a complaint or an opt-out means the
        contact fails (notifications.selectors.contact_failing)."""

        DELIVERED = "delivered", pgettext_lazy("delivery", "Delivered")
        DEFERRED = "deferred", pgettext_lazy("delivery", "Delayed, still tried")
        BOUNCED = "bounced", pgettext_lazy("delivery", "Refused: address or number unreachable")
        COMPLAINED = "complained", pgettext_lazy("delivery", "Reported as unwanted")
        OPTED_OUT = "opted_out", pgettext_lazy("delivery", "The person asked for no more")

    class SkipReason(models.TextChoices):
        NO_CONTACT = "no_contact", _("No email address or mobile phone number")
        OPTED_OUT = "opted_out", _("The person turned these messages off")
        PUSH_DISABLED = "push_disabled", _("App notifications are not set up on this platform")
        PUSH_GONE = "push_gone", _("The app no longer receives notifications on any device")

    beneficiary = models.ForeignKey(
        "wallet.Beneficiary",
        models.PROTECT,
        related_name="notifications",
        verbose_name=_("beneficiary"),
    )
    # The funder whose aid the message is about, whose staff alone may read it; none for a
    # message about the wallet as a whole, which every funder helping the person may read.
    funder = models.ForeignKey(
        "funders.Funder",
        models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("funder"),
    )
    kind = models.CharField(_("message"), max_length=40, choices=Kind.choices)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    recipient = models.CharField(_("sent to"), max_length=254, blank=True)
    subject = models.CharField(_("subject"), max_length=200, blank=True)
    body = models.TextField(_("text"), blank=True)
    status = models.CharField(
        _("status"), max_length=8, choices=Status.choices, default=Status.QUEUED
    )
    skip_reason = models.CharField(
        _("why it was not sent"), max_length=32, choices=SkipReason.choices, blank=True
    )
    error = models.CharField(_("last error"), max_length=ERROR_LENGTH, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    # Null once nothing is left to try: sent, skipped, or failed for the last time.
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    # "<kind>:<key of the event>:<channel>": the same event told twice makes one row.
    dedupe_key = models.CharField(max_length=200, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    # The provider's id of the message, by which its delivery reports find it.
    provider_message_id = models.CharField(
        _("provider's message id"), max_length=200, blank=True, db_index=True
    )
    delivery = models.CharField(_("delivery"), max_length=12, choices=Delivery.choices, blank=True)
    delivery_detail = models.CharField(_("provider's words"), max_length=200, blank=True)
    delivery_reported_at = models.DateTimeField(_("delivery reported at"), null=True, blank=True)

    class Meta:
        verbose_name = _("message to a beneficiary")
        verbose_name_plural = _("messages to beneficiaries")
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(next_attempt_at__isnull=False),
                name="notification_due_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} ({self.get_channel_display()})"


class NotificationPreference(models.Model):
    """A beneficiary's choice for one kind of message on one channel. Without a row, the
    default applies (see notifications.preferences)."""

    beneficiary = models.ForeignKey(
        "wallet.Beneficiary",
        models.CASCADE,
        related_name="notification_preferences",
        verbose_name=_("beneficiary"),
    )
    kind = models.CharField(_("message"), max_length=40, choices=Notification.Kind.choices)
    channel = models.CharField(_("channel"), max_length=8, choices=Notification.Channel.choices)
    enabled = models.BooleanField(_("sent"))
    updated_at = models.DateTimeField(_("changed at"), auto_now=True)

    class Meta:
        verbose_name = _("notification choice")
        verbose_name_plural = _("notification choices")
        constraints = [
            models.UniqueConstraint(
                fields=["beneficiary", "kind", "channel"], name="notification_preference_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} / {self.channel}: {'on' if self.enabled else 'off'}"


class PushSubscription(models.Model):
    """One browser or phone where the beneficiary's installed app receives web push: the push
    service's endpoint and the keys the message is encrypted for (RFC 8291). Disabled, not
    deleted, when the beneficiary turns it off or the push service says it is gone."""

    beneficiary = models.ForeignKey(
        "wallet.Beneficiary",
        models.CASCADE,
        related_name="push_subscriptions",
        verbose_name=_("beneficiary"),
    )
    endpoint = models.URLField(_("push service address"), max_length=1000, unique=True)
    p256dh = models.CharField(_("public key"), max_length=100)
    auth = models.CharField(_("authentication secret"), max_length=50)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_success_at = models.DateTimeField(_("last delivered at"), null=True, blank=True)
    disabled_at = models.DateTimeField(_("turned off at"), null=True, blank=True)

    class Meta:
        verbose_name = _("app notification subscription")
        verbose_name_plural = _("app notification subscriptions")
        indexes = [
            models.Index(
                fields=["beneficiary"],
                condition=Q(disabled_at__isnull=True),
                name="push_subscription_active_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.beneficiary_id} · {self.endpoint[:40]}"


class DecisionNotice(models.Model):
    """A payment's message still to be written: inserted in the payment's own transaction (one
    small row, nothing rendered there), so that the message is never lost with a task that a
    broker down at commit time could not take. The drain that beat runs every second
    (notifications.services.decision_notices_drain) renders the outbox rows and deletes it.

    A notice whose message fails is tried again later and later (exponential backoff, capped);
    after its last attempt it is failed: kept, with its error, for the operators to see and
    send again (the admin), instead of retried and logged every second for good."""

    # No foreign key constraint (issue 19): a deferred check at the payment's COMMIT, for a
    # decision inserted by the same statement or transaction, and immutable (the ORM's CASCADE
    # still applies). tests/merchant_api/test_decision_references.py checks the reference.
    decision = models.OneToOneField(
        "wallet.Decision",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="notice",
        verbose_name=_("authorization decision"),
        db_constraint=False,
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    # Database defaults: the payment's one statement (core/one_statement.py) sends no value for
    # them, so the hot path's insert is the same.
    attempts = models.PositiveSmallIntegerField(_("attempts"), db_default=0)
    # When the drain may take the notice; null once it failed for good.
    next_attempt_at = models.DateTimeField(
        _("next attempt at"), null=True, blank=True, db_default=Now()
    )
    error = models.CharField(_("last error"), max_length=ERROR_LENGTH, blank=True, db_default="")
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("payment message to write")
        verbose_name_plural = _("payment messages to write")
        indexes = [
            # The drain's scan: the due notices only, oldest due first; failed ones stay out.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(next_attempt_at__isnull=False),
                name="decision_notice_due_idx",
            )
        ]

    def __str__(self) -> str:
        return f"notice of decision {self.decision_id}"


class CaptureNotice(models.Model):
    """A capture's low-balance check still to be made, inserted in the capture's own
    transaction as DecisionNotice is for a payment; the drain that beat runs every second
    (notifications.services.capture_notices_drain) makes the check (capture_low_balance_notify,
    which tells once per crossing) and deletes the notice. Without it, a broker down at commit,
    or a task failed while PostgreSQL was down, would lose the message."""

    capture = models.OneToOneField(
        "ledger.Transfer", on_delete=models.CASCADE, primary_key=True, related_name="capture_notice"
    )
    # When the capture was made; the drain takes the notices in this order.
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Null until a check fails: the notice is due at once. After a failure, the time the drain
    # may try it again (the application's clock, the one that compares it).
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)

    def __str__(self) -> str:
        return f"low-balance check of capture {self.capture_id}"


class SmsOptOut(models.Model):
    """A phone number that texted STOP (or whose carrier said so through the provider): it gets
    no more SMS but those its owner asks for (a sign-in code, the balance). Kept per number,
    since several people may share one; removed when the number texts START."""

    phone = models.CharField(_("phone number"), max_length=32, unique=True)
    created_at = models.DateTimeField(_("opted out at"), auto_now_add=True)
    # How it was said: "sms" (the person's own STOP), "provider" (the provider's report).
    source = models.CharField(_("source"), max_length=16)

    class Meta:
        verbose_name = _("SMS opt-out")
        verbose_name_plural = _("SMS opt-outs")

    def __str__(self) -> str:
        return f"SMS opt-out {self.pk}"
