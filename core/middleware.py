"""The answer while the database cannot be reached: 503 with Retry-After, never a 500; the site's
middleware, skipped by the APIs that need none of it; the Content-Security-Policy header, built
once per process."""

import functools
import http
import logging
from collections.abc import Callable
from typing import Any, cast

from csp.constants import HEADER, HEADER_REPORT_ONLY
from csp.middleware import CheckableLazyObject, CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed
from django.core.handlers.exception import convert_exception_to_response
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.module_loading import import_string

from core.api_errors import DATABASE_UNAVAILABLE, service_unavailable

logger = logging.getLogger(__name__)


class DatabaseUnavailable:
    """A view that could not reach PostgreSQL (down, restarting, out of connections) answers
    503 with Retry-After, in the caller's shape (core.api_errors.service_unavailable). Nothing
    was written, so the caller may send the request again (with the same Idempotency-Key).

    The views of DRF answer the same through its exception handler, and an exception raised by
    a middleware (a session read to know the user) through handler500: only a view's
    exception comes here. Answered here, it is logged in one line, not as a bug's traceback on
    every request for as long as the database is away."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DATABASE_UNAVAILABLE):
            return None
        logger.error("database unavailable: %s", exception)
        return service_unavailable(request)


class SiteMiddleware:
    """The middleware of the site's pages (settings.SITE_MIDDLEWARE: sessions, CSRF, the signed-in
    user, second factors, messages, history, sign-in lockouts), run as Django would run them at
    this place of MIDDLEWARE, except for the paths of settings.SITE_MIDDLEWARE_SKIPPED_PATHS: an
    API whose every request carries its own key (the merchant API) reads no session, no cookie
    and no signed-in user, and answers the same without them, headers included (pinned by
    tests/core/test_site_middleware.py). They were an eighth of a payment's processor time
    (BENCHMARKS.md, issue 19 part 5).

    The hooks a wrapped middleware has besides its call (process_view, process_exception,
    process_template_response) run here in the order Django's handler would give them."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.skipped = tuple(settings.SITE_MIDDLEWARE_SKIPPED_PATHS)
        self._view: list[Callable[..., HttpResponse | None]] = []
        self._template_response: list[Callable[[HttpRequest, Any], Any]] = []
        self._exception: list[Callable[[HttpRequest, Exception], HttpResponse | None]] = []
        handler: Callable[[HttpRequest], Any] = convert_exception_to_response(get_response)
        # As BaseHandler.load_middleware builds its chain, inner middleware first.
        for path in reversed(settings.SITE_MIDDLEWARE):
            try:
                instance = import_string(path)(handler)
            except MiddlewareNotUsed:
                continue
            if hasattr(instance, "process_view"):
                self._view.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        # Synchronous, as this class is (not async_capable): Django adapts it under ASGI.
        self.site_chain = cast(Callable[[HttpRequest], HttpResponseBase], handler)

    def _site(self, request: HttpRequest) -> bool:
        return not request.path_info.startswith(self.skipped)

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if self._site(request):
            return self.site_chain(request)
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponse | None:
        if self._site(request):
            for hook in self._view:
                response = hook(request, view_func, view_args, view_kwargs)
                if response is not None:
                    return response
        return None

    def process_template_response(self, request: HttpRequest, response: Any) -> Any:
        if self._site(request):
            for hook in self._template_response:
                response = hook(request, response)
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if self._site(request):
            for hook in self._exception:
                response = hook(request, exception)
                if response is not None:
                    return response
        return None


# What a view (csp.decorators) sets on a response to change its policy or exempt it.
_POLICY_CHANGES = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
    "_csp_exempt",
    "_csp_exempt_ro",
)
_DEBUG_EXEMPT = (http.HTTPStatus.INTERNAL_SERVER_ERROR, http.HTTPStatus.NOT_FOUND)


@functools.cache
def _settings_policies() -> tuple[tuple[str, str, tuple[str, ...]], ...]:
    """(header, policy, excluded path prefixes) of the settings' policy and report-only policy
    without a nonce, as django-csp's middleware builds them, each left out when empty."""
    policies = []
    for header, setting, report_only in (
        (HEADER, "CONTENT_SECURITY_POLICY", False),
        (HEADER_REPORT_ONLY, "CONTENT_SECURITY_POLICY_REPORT_ONLY", True),
    ):
        policy = build_policy(report_only=report_only)
        if policy:
            prefixes = (getattr(settings, setting, None) or {}).get("EXCLUDE_URL_PREFIXES") or ()
            policies.append((header, policy, tuple(prefixes)))
    return tuple(policies)


@receiver(setting_changed)
def _policies_changed(*, setting: str, **kwargs: Any) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _settings_policies.cache_clear()


class ContentSecurityPolicy(CSPMiddleware):
    """django-csp's middleware, whose header for an answer that drew no nonce and whose view
    left the policy as the settings give it (every JSON answer of the APIs) is built once per
    process: django-csp builds it afresh for each answer (copying its parts into dicts twice,
    its directives from a set), 0.2 ms of processor time per payment (BENCHMARKS.md, issue 19
    part 7). The same text: build_policy's directives follow a set's order, fixed for the life
    of a process. Any other answer (a page with a nonce, the API docs' widened policy, an exempt
    view) goes through django-csp's own code."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        if getattr(request, "_csp_nonce", None) is not None or any(
            hasattr(response, name) for name in _POLICY_CHANGES
        ):
            return super().process_response(request, response)
        if response.status_code in _DEBUG_EXEMPT and settings.DEBUG:
            return response
        for header, policy, excluded in _settings_policies():
            if header not in response and not request.path_info.startswith(excluded):
                response[header] = policy
        # As django-csp does: a nonce drawn after the header is written would be in no policy.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)  # type: ignore[attr-defined]
        return response
