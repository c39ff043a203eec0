"""Deployment checks of the operations settings (`manage.py check --deploy`)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

IN_PROCESS_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@register(Tags.caches, deploy=True)
def cache_shared_by_every_process(app_configs, **kwargs) -> list[Warning]:
    """Rate limits (the merchant API's, sign-in's, the payment codes' guessing caps) are counted
    in the cache: an in-process cache counts them per process, so N servers allow N times the
    limit, and a restart forgets them. Fine for the embedded quick start, not in production."""
    backend = settings.CACHES["default"]["BACKEND"]
    if backend not in IN_PROCESS_CACHES:
        return []
    return [
        Warning(
            f"The cache is {backend}, which each process keeps on its own: every server "
            "process counts its own rate limits.",
            hint="Set CACHE_URL=redis://host:6379/1 on every server and worker.",
            id="operations.W001",
        )
    ]
