"""Tasks of the beneficiary app. Thin: rebuild the arguments, call the service.

The task imports its service when it runs, as the other apps' tasks do: a services module
imports a tasks module at the top to queue its tasks, and never the other way round."""

from celery import shared_task
from django.utils import translation


@shared_task(ignore_result=True)
def sign_in_code_send(contact: str, channel: str, language: str) -> bool:
    """Look the contact up and, if it may sign in, send it a code in `language` (the request's).
    The request only queued this, so that it answers in the same time whether or not the
    contact is known. Returns whether a code was sent."""
    from beneficiary_app import services

    with translation.override(language):
        return services.sign_in_code_request(contact=services.Contact(contact, channel)) is not None
