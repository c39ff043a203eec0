from django.db import models
from django.utils.translation import gettext_lazy as _


class RetentionPurge(models.Model):
    """One rule of the retention schedule applied once (gdpr.retention): what it removed or
    pseudonymised, how much, and up to which date. The audit trail of the schedule, for the
    data protection officer: written in the same transaction as the purge it records."""

    rule = models.CharField(_("rule"), max_length=40)
    count = models.PositiveIntegerField(_("records purged"))
    cutoff = models.DateTimeField(_("records older than"))
    ran_at = models.DateTimeField(_("ran at"), auto_now_add=True)

    class Meta:
        verbose_name = _("retention purge")
        verbose_name_plural = _("retention purges")
        ordering = ["-ran_at", "rule"]

    def __str__(self) -> str:
        return f"{self.rule}: {self.count}"
