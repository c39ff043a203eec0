"""The messages' tests may send through a local fake of Brevo's API (brevo_fake.py)."""

from tests.notifications.brevo_fake import brevo_fake  # noqa: F401  (the fixture)
