"""What operations hears from the domains: each payment decision, live or sandbox, counted and
logged once its transaction commits (a decision rolled back, say to retry on a balance that
moved, was never taken). Nothing here reads the database: the decision is in hand, the hot
path pays no round trip for it."""

import logging

from django.db import transaction

from core import metrics
from wallet.models import Decision

logger = logging.getLogger(__name__)


def decision_observe(decision: Decision) -> None:
    """Counts the decision by channel and outcome, times it, and writes its log line (with the
    request id, as every line: settings.LOGGING)."""
    metrics.AUTHORIZATIONS.labels(
        decision.channel, str(decision.livemode).lower(), decision.status, decision.reason
    ).inc()
    if decision.livemode:  # the sandbox's answers are scripted, not timed (duration_us 0)
        metrics.DECISION_DURATION.labels(decision.channel).observe(decision.duration_us / 1_000_000)
    logger.info(
        "decision %s: %s, %s of %s %s%s, %s µs",
        decision.reference,
        decision.status,
        decision.approved_amount,
        decision.amount,
        decision.currency,
        f" ({decision.reason})" if decision.reason else "",
        decision.duration_us,
        extra={
            "decision": decision.reference,
            "channel": decision.channel,
            "livemode": decision.livemode,
            "outcome": decision.status,
            "reason": decision.reason,
            "amount": decision.amount,
            "approved_amount": decision.approved_amount,
            "currency": decision.currency,
            "duration_us": decision.duration_us,
        },
    )


def on_decision_recorded(sender, *, decision: Decision, **kwargs) -> None:
    """Connected to wallet.signals.decision_recorded, sent once per live decision by every path
    that takes one: the hot path's one statement too, which writes the row without save() and so
    without post_save. Never on a replay; inside the decision's transaction."""
    # robust: counting must never turn a committed payment into an error.
    transaction.on_commit(lambda: decision_observe(decision), robust=True)


def on_sandbox_decision_saved(sender, *, instance: Decision, created: bool, **kwargs) -> None:
    """The sandbox (merchants/sandbox.py) writes its test decisions without decision_recorded,
    whose other receivers must not act on them (messages, webhooks of the live path): they are
    counted from their post_save (livemode "false"). A decision is saved once, when taken."""
    if created and not instance.livemode:
        transaction.on_commit(lambda: decision_observe(instance), robust=True)
