from datetime import datetime, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from stripe_issuing.funding import card_settlement_reconcile
from stripe_issuing.webhooks import event_process
from wallet.models.stripe_events import StripeEvent


def _moment(text: str) -> datetime:
    """An ISO date (midnight, local time) or date-time."""
    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text)
        if day is None:
            raise CommandError(f"not a date: {text!r} (use YYYY-MM-DD or an ISO date-time)")
        moment = datetime.combine(day, datetime.min.time())
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = (
        "Stripe Issuing tools. `stripe reconcile [--since --until --currency]` compares the "
        "ledger's card-settlement account with Stripe's balance transactions (default: the last "
        "day) and fails on a difference. `stripe replay_failed` processes again the events "
        "whose processing failed."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True)
        reconcile = actions.add_parser("reconcile", help="ledger against Stripe")
        reconcile.add_argument("--since", type=_moment)
        reconcile.add_argument("--until", type=_moment)
        reconcile.add_argument("--currency", default="EUR")
        actions.add_parser("replay_failed", help="process failed Stripe events again")

    def handle(self, *args, action: str, **options):
        if action == "replay_failed":
            self._replay_failed()
            return
        until = options["until"] or timezone.now()
        since = options["since"] or until - timedelta(days=1)
        report = card_settlement_reconcile(currency=options["currency"], since=since, until=until)
        for line in report.lines():
            self.stdout.write(line)
        if not report.balanced:
            raise CommandError("stripe reconcile: the ledger and Stripe differ")

    def _replay_failed(self):
        failed = StripeEvent.objects.filter(result=StripeEvent.Result.FAILED).order_by("pk")
        count = 0
        for event in failed:
            event_process(event)
            count += 1
        still = StripeEvent.objects.filter(result=StripeEvent.Result.FAILED).count()
        self.stdout.write(f"stripe replay_failed: {count} replayed, {still} still failing")
        if still:
            raise CommandError(f"stripe replay_failed: {still} event(s) still failing")
