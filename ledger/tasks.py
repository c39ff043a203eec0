"""The ledger's nightly self-check: `verify`, logged as errors when it finds any."""

import logging

from celery import shared_task

from ledger.services import verify_run_record

logger = logging.getLogger(__name__)


@shared_task
def verify_ledger() -> int:
    problems = verify_run_record()
    for problem in problems:
        logger.error("ledger verify: %s", problem)
    return len(problems)
