"""The request id: one id per HTTP request, carried into everything the request sets going.

`RequestIdMiddleware` takes the load balancer's `X-Request-ID` when it is a UUID (32 hex
digits, as nginx's $request_id, or the dashed form) and draws one otherwise; it keeps the id in
django-guid's context variable and sends it back in the response's `X-Request-ID`, as
django-guid's middleware did under settings.DJANGO_GUID. From there:
- every log line carries it (`RequestIdFilter`, on the handlers of settings.LOGGING), and inside
  a Celery task the task's id and name, which the task hooks below keep in a context variable;
- a Celery task queued during the request carries it in its message's headers
  (`task_publish_add_request_id`) and runs under it (`task_prerun_set_request_id`), so the
  worker's log lines carry it too; a task queued by a task carries its parent's;
- a webhook event records it, and each delivery of the event sends it (merchants/webhooks.py).

The Celery hooks are ours rather than django-guid's CeleryIntegration: its task_postrun clears
the id, which, for a task run eagerly inside a request (CELERY_TASK_ALWAYS_EAGER), would clear
the request's own id; ours restore what was there before the task."""

import logging
import uuid
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any

from django.http import HttpRequest, HttpResponseBase
from django_guid import get_guid
from django_guid.context import guid

# The response header, the task header and the webhook header: one name everywhere.
HEADER = "X-Request-ID"
_TOKEN = "aidwallet_request_id_token"
_TASK_TOKEN = "aidwallet_task_token"
# The (id, name) of the Celery task running in this context, set by task_prerun and put back by
# task_postrun: a log record reads it without asking Celery for its current task.
_task: ContextVar[tuple[str, str] | None] = ContextVar("aidwallet_task", default=None)


# django-guid's logger: its warning about a load balancer's id refused keeps its name.
_guid_logger = logging.getLogger("django_guid")


class RequestIdMiddleware:
    """django-guid's middleware under settings.DJANGO_GUID (the header X-Request-ID, validated,
    returned and exposed to browsers' scripts; no URL ignored; no integration), without its
    per-request reading of its settings (an ignored URLs' set built twice per request) and of
    `request.headers` (every header copied into a dict): a fiftieth of a payment's processor
    time (BENCHMARKS.md, issue 19 part 7). The same ids and the same headers
    (tests/operations/test_request_id.py)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        given = request.META.get("HTTP_X_REQUEST_ID")
        drawn_or_given = _valid(given) or uuid.uuid4().hex
        if given and drawn_or_given != given:
            # As django-guid words it: a value with other characters is not written to the log.
            if all(letter.isalnum() or letter == "-" for letter in given):
                _guid_logger.warning(
                    "%s is not a valid GUID. New GUID is %s", given, drawn_or_given
                )
            else:
                _guid_logger.warning(
                    "Non-alnum %s provided. New GUID is %s", HEADER, drawn_or_given
                )
        guid.set(drawn_or_given)
        response = self.get_response(request)
        response[HEADER] = guid.get()
        response["Access-Control-Expose-Headers"] = HEADER
        return response


def _valid(given: str | None) -> str | None:
    """`given` if it is a UUID (as django-guid's validation: `uuid.UUID(given, version=4)`)."""
    if not given:
        return None
    try:
        uuid.UUID(given, version=4)
    except ValueError:
        return None
    return given


def request_id() -> str:
    """The current request's (or task's) id, "" outside of both."""
    return get_guid() or ""


class RequestIdFilter(logging.Filter):
    """Adds `request_id`, and inside a Celery task `task_id` and `task_name`, to every record,
    so that any formatter can write them ("" when there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id()
        # None outside a task (a task called as a plain function runs no task_prerun).
        task = _task.get()
        record.task_id, record.task_name = task if task is not None else ("", "")
        return True


def task_publish_add_request_id(headers: dict[str, Any], **kwargs: Any) -> None:
    """before_task_publish: the task's message carries the id of whoever queues it."""
    current = request_id()
    if current:
        headers[HEADER] = current


def task_prerun_set_request_id(task: Any, **kwargs: Any) -> None:
    """task_prerun: the task runs under the id it was queued with; a task queued by beat (or
    eagerly, outside a request) gets one of its own, so its lines still group together."""
    given = task.request.get(HEADER)
    if not given and task.request.is_eager:
        given = request_id()  # same thread as the caller: keep the caller's
    # Drawn as django-guid draws one (its own helper reads Django's settings on import, and
    # this module is imported while they load, by config/celery.py).
    token: Token[Any] = guid.set(given or uuid.uuid4().hex)
    setattr(task.request, _TOKEN, token)
    # A task applied without an id (none is drawn) is not named in the log, as before.
    task_id = task.request.id
    running = (task_id, task.name) if task_id is not None else None
    setattr(task.request, _TASK_TOKEN, _task.set(running))


def task_postrun_restore_request_id(task: Any, **kwargs: Any) -> None:
    """task_postrun: back to the id before the task (none in a worker, the request's when the
    task ran eagerly inside one)."""
    token = getattr(task.request, _TOKEN, None)
    if token is not None:
        guid.reset(token)
        setattr(task.request, _TOKEN, None)
    task_token = getattr(task.request, _TASK_TOKEN, None)
    if task_token is not None:
        _task.reset(task_token)
        setattr(task.request, _TASK_TOKEN, None)
