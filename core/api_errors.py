"""The API's one error shape: {"error": {"code", "message", "field"}}, with a stable code that
clients can rely on and a message a person can read."""

import logging
import sys
from collections.abc import Mapping

from django import db
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import defaults
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response

from core.errors import DomainError

logger = logging.getLogger(__name__)

# The database is unreachable (down, restarting, failing over, out of connections) or a query
# was cut (a timeout, a deadlock): nothing was written, and the same request may succeed in a
# moment. Every other database error (an integrity or programming error) is a bug: a 500.
DATABASE_UNAVAILABLE = (db.OperationalError, db.InterfaceError)
UNAVAILABLE_MESSAGE = gettext_lazy(
    "The service is temporarily unavailable. Please retry in a moment."
)


def _retry_after() -> dict[str, str]:
    # Whole seconds (RFC 9110): about the time PostgreSQL takes to restart after a crash.
    return {"Retry-After": str(settings.DATABASE_UNAVAILABLE_RETRY_AFTER_SECONDS)}


# The error shape in the OpenAPI schemas, one component for the merchant API and the app API
# alike: drf-spectacular names a component after its serializer class, and two classes of one
# name make a wrong schema (drf_spectacular.W001). (Comments, not docstrings: a serializer's
# docstring is its description in the schema.)
class ErrorDetail(serializers.Serializer[Mapping[str, object]]):
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(allow_null=True)


class ErrorOutput(serializers.Serializer[Mapping[str, object]]):
    error = ErrorDetail()


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = gettext_lazy("The request is too large.")


_DRF_CODES = {
    RequestTooLarge: "request_too_large",
    exceptions.ParseError: "malformed_request",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "authentication_required",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "rate_limited",
}


def _printable(text: object) -> str:
    # A message may quote the client's input, and JSON has no UTF-8 for a lone surrogate.
    return str(text).encode("utf-8", "replace").decode("utf-8")


def error_response(
    code: str,
    message: object,
    *,
    status_code: int,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = {"error": {"code": code, "message": _printable(message), "field": field}}
    return Response(body, status=status_code, headers=headers)


def _first_error(detail: object, prefix: str = "") -> tuple[str | None, str]:
    """The first field and message of a (possibly nested) DRF validation error."""
    if isinstance(detail, dict):
        field, value = next(iter(detail.items()))
        name = field if field != "non_field_errors" else None
        path = f"{prefix}.{name}" if prefix and name else (name or prefix or None)
        return _first_error(value, path or "")[0] or path, _first_error(value)[1]
    if isinstance(detail, list) and detail:
        return _first_error(detail[0], prefix)
    return (prefix or None), str(detail)


def exception_handler(exc: Exception, context: Mapping[str, object]) -> Response | None:
    if isinstance(exc, DATABASE_UNAVAILABLE):
        # A client should retry later, with the same idempotency key; nothing was written.
        logger.error("database unavailable: %s", exc)
        return error_response(
            "service_unavailable",
            UNAVAILABLE_MESSAGE,
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers=_retry_after(),
        )
    if isinstance(exc, RequestDataTooBig):
        exc = RequestTooLarge()
    if isinstance(exc, DomainError):
        # Whole seconds until a limit or a lockout ends, for clients that back off (RFC 9110).
        retry_after = exc.details.get("retry_after")
        return error_response(
            exc.code,
            exc.message,
            status_code=exc.status,
            field=exc.field,
            headers={"Retry-After": str(retry_after)} if isinstance(retry_after, int) else None,
        )
    if isinstance(exc, DjangoValidationError):
        # A model's own validation, reached through a service: the client's data, so a 400.
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, exceptions.ValidationError):
        field, message = _first_error(exc.detail)
        return error_response(
            "invalid_request", message, status_code=status.HTTP_400_BAD_REQUEST, field=field
        )
    if isinstance(exc, exceptions.APIException):
        code = next(
            (code for kind, code in _DRF_CODES.items() if isinstance(exc, kind)), "invalid_request"
        )
        headers: dict[str, str] = {}
        # Set on the exception by DRF (APIView.handle_exception, Throttled), unknown to its stubs.
        if auth_header := getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = auth_header
        if wait := getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(wait))
        message = exc.detail if isinstance(exc.detail, str) else _("The request is not valid.")
        return error_response(code, message, status_code=exc.status_code, headers=headers)
    return None


def _api_error(request: HttpRequest, code: str, message: object, status_code: int) -> JsonResponse:
    body = {"error": {"code": code, "message": _printable(message), "field": None}}
    return JsonResponse(body, status=status_code)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(("/api/", "/hooks/"))


def service_unavailable(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After, while the database cannot be reached: the API's error under /api/
    and /hooks/, a plain page elsewhere. Rendered without the request: a context processor
    could read the session or the user, from the database that is away."""
    if _is_api(request):
        response: HttpResponse = _api_error(
            request, "service_unavailable", UNAVAILABLE_MESSAGE, 503
        )
    else:
        response = HttpResponse(render_to_string("core/unavailable.html"), status=503)
    for header, value in _retry_after().items():
        response[header] = value
    return response


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 400 for what reached no view's own handling (a body above
    DATA_UPLOAD_MAX_MEMORY_SIZE read by a webhook): JSON under /api/ and /hooks/."""
    if not _is_api(request):
        # Django's bad_request never reads `exception`; its stubs require one all the same.
        return defaults.bad_request(request, exception)  # type: ignore[arg-type]
    if isinstance(exception, RequestDataTooBig):
        return _api_error(request, "request_too_large", RequestTooLarge.default_detail, 413)
    return _api_error(request, "malformed_request", _("The request is not valid."), 400)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's 404 for the URLs no view matched: JSON under /api/, the usual page elsewhere."""
    if request.path.startswith("/api/"):
        return _api_error(request, "not_found", _("No such resource."), 404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """The last resort, for a bug: a JSON error under /api/, without any detail of the bug. An
    exception a middleware raised when the database was away (reading the session to know the
    user) is no bug: Django calls this view inside its `except`, where sys.exc_info() holds it,
    and it is answered 503 as a view's would be (core.middleware.DatabaseUnavailable)."""
    if isinstance(sys.exc_info()[1], DATABASE_UNAVAILABLE):
        return service_unavailable(request)
    if request.path.startswith("/api/"):
        return _api_error(request, "internal_error", _("An unexpected error occurred."), 500)
    return defaults.server_error(request)
