"""Stripe Issuing tasks. Network failures and Stripe's own errors are retried with backoff;
a request Stripe refuses is not (retrying would be refused again) and is logged.

The services queue these tasks, so they import this module at the top; each task imports its
service when it runs, which keeps the import between the two in one direction."""

import stripe
from celery import shared_task

from wallet.models import Card

_TRANSIENT = (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError)
_RETRY = {
    "autoretry_for": _TRANSIENT,
    "retry_backoff": 10,
    "retry_backoff_max": 900,
    "retry_jitter": True,
    "max_retries": 10,
}


@shared_task(**_RETRY)
def issue_card(card_id: int) -> str:
    from stripe_issuing import cards

    card = cards.card_provision(card=Card.objects.get(pk=card_id))
    return card.stripe_card_id


@shared_task(**_RETRY)
def push_card_status(card_id: int) -> str:
    from stripe_issuing import cards

    return cards.card_status_push(card=Card.objects.get(pk=card_id))
