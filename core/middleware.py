"""The answer while the database cannot be reached: 503 with Retry-After, never a 500."""

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

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
