"""The operator's nightly reconciliation report, logged as errors where a line fails."""

import logging

from celery import shared_task

from core.replica import replica_reads
from reconciliation.report import reconciliation_build

logger = logging.getLogger(__name__)


@shared_task
def reconcile_ledger() -> int:
    """The operator's reconciliation, daily: each line that does not balance is an error."""
    with replica_reads():
        failures = reconciliation_build().failures
    for check in failures:
        logger.error("reconcile: %s", check)
    return len(failures)
