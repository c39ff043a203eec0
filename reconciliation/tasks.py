"""The operator's nightly reconciliation report, logged as errors where a line fails."""

import logging

from celery import shared_task

from reconciliation.report import reconciliation_build

logger = logging.getLogger(__name__)


@shared_task
def reconcile_ledger() -> int:
    """The operator's reconciliation, daily: each line that does not balance is an error."""
    failures = reconciliation_build().failures
    for check in failures:
        logger.error("reconcile: %s", check)
    return len(failures)
