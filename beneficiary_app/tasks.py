"""Tasks of the beneficiary app. Thin: rebuild the arguments, call the service."""

from celery import shared_task
from django.utils import translation

from beneficiary_app.services import Contact, sign_in_code_request


@shared_task(ignore_result=True)
def sign_in_code_send(contact: str, channel: str, language: str) -> bool:
    """Look the contact up and, if it may sign in, send it a code in `language` (the request's).
    The request only queued this, so that it answers in the same time whether or not the
    contact is known. Returns whether a code was sent."""
    with translation.override(language):
        return sign_in_code_request(contact=Contact(contact, channel)) is not None
