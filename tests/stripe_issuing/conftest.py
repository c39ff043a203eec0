"""Stripe Issuing tests run against the local fake Stripe (tests/stripe_fake.py), with Celery
tasks run in the test's process."""

import pytest

from tests.stripe_fake import stripe_fake  # noqa: F401  (the fixture)


@pytest.fixture
def eager_tasks(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = True
