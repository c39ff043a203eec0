from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LandingConfig(AppConfig):
    """The front door: the page at / that leads to the back office, the app and the API docs,
    and the frame of the docs pages, which loads nothing from a third party."""

    name = "landing"
    verbose_name = _("Landing page")
