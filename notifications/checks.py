"""System checks of the wallet's settings (`manage.py check`, run by migrate and runserver)."""

from django.conf import settings
from django.core.checks import Error, register
from django.core.mail.backends.console import EmailBackend as DjangoConsoleEmailBackend
from django.utils.module_loading import import_string

from notifications.channels import ConsoleSMSBackend


def _backend(path: str) -> type | None:
    try:
        return import_string(path)
    except ImportError:
        return None  # a setting that names nothing fails loudly at the first message


@register()
def messages_leave_for_real(app_configs, **kwargs) -> list[Error]:
    """Outside development, email and SMS must go to their recipients, not to the console (or
    files): sign-in codes would end up in the logs, where whoever reads them can sign in."""
    if settings.DEBUG:
        return []
    errors = []
    email = _backend(settings.EMAIL_BACKEND)
    # Django's file backend is its console backend writing to files.
    if isinstance(email, type) and issubclass(email, DjangoConsoleEmailBackend):
        errors.append(
            Error(
                f"EMAIL_BACKEND is {settings.EMAIL_BACKEND} while DEBUG is off: emails, "
                "sign-in codes included, are written to the logs instead of being sent.",
                hint="Set EMAIL_BACKEND to django.core.mail.backends.smtp.EmailBackend (with "
                "EMAIL_HOST...) or a provider's backend, or DEBUG=true in development.",
                id="wallet.E001",
            )
        )
    sms = _backend(settings.SMS_BACKEND)
    if isinstance(sms, type) and issubclass(sms, ConsoleSMSBackend):
        errors.append(
            Error(
                f"SMS_BACKEND is {settings.SMS_BACKEND} while DEBUG is off: text messages, "
                "sign-in codes included, are written to the logs instead of being sent.",
                hint="Set SMS_BACKEND to your SMS provider's backend (a class with "
                "send(phone, text)), or DEBUG=true in development.",
                id="wallet.E002",
            )
        )
    return errors
