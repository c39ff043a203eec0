"""What every operation of the merchant API, /api/merchant/v1/, shares: the base view (API key,
throttle, idempotency), the fields amounts and metadata are read with, the error schema and the
cursor pagination of lists. Each resource has its own module, one class per operation with its
serializers and OpenAPI examples beside it.

Every POST takes an `Idempotency-Key` header (see merchant_api/idempotency.py); every object is
looked up through the authenticated merchant and the key's mode (live, or the sandbox's: see
merchants/sandbox.py), so another merchant's id, or an id of the other mode, answers 404."""

import functools
import re
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import django_filters
import orjson
from django import forms
from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.formatting import lazy_format
from rest_framework.views import APIView

from core.errors import AmountTooLarge, InvalidAmount
from core.money import MAX_AMOUNT
from merchant_api import idempotency
from merchant_api.authentication import ApiKeyAuthentication
from merchant_api.throttles import MerchantKeyThrottle
from merchants.models import ApiKey, Merchant


class AmountField(serializers.IntegerField):
    """An amount in minor units: a JSON integer from 1 to MAX_AMOUNT. "12", 12.0, true and 0 are
    refused, not coerced, with the engine's own codes (invalid_amount, amount_too_large) naming
    the request's field, as the engine would answer them."""

    def __init__(self, **kwargs):
        # The bounds are given for the schema; to_internal_value enforces them with the codes.
        super().__init__(min_value=1, max_value=MAX_AMOUNT, **kwargs)

    def validate_empty_values(self, data):
        if data is None:
            raise InvalidAmount(field=self.field_name)
        return super().validate_empty_values(data)

    def to_internal_value(self, data):
        # A DomainError, not a ValidationError: the serializer lets it through to the API's
        # exception handler, which answers its code instead of invalid_request.
        if not isinstance(data, int) or isinstance(data, bool) or data < 1:
            raise InvalidAmount(field=self.field_name)
        if data > MAX_AMOUNT:
            raise AmountTooLarge(field=self.field_name)
        return data


METADATA_KEYS, METADATA_KEY_LENGTH, METADATA_VALUE_LENGTH = 20, 40, 500


@extend_schema_field(
    {
        "type": "object",
        "maxProperties": METADATA_KEYS,
        "propertyNames": {"maxLength": METADATA_KEY_LENGTH},
        "additionalProperties": {"type": "string", "maxLength": METADATA_VALUE_LENGTH},
        "description": "Up to 20 keys of at most 40 characters, each with a string of at most "
        "500 characters: what the merchant wants back, e.g. its order number. Given back as "
        "sent, {} when none was sent.",
    }
)
class MetadataField(serializers.DictField):
    # One field, so one schema, for metadata in requests and in answers (and webhook payloads).
    child = serializers.CharField(max_length=METADATA_VALUE_LENGTH, allow_blank=True)
    default_error_messages = {
        "too_many": _("At most 20 keys of at most 40 characters."),
    }

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        too_long = any(len(key) > METADATA_KEY_LENGTH for key in value)
        if len(value) > METADATA_KEYS or too_long:
            self.fail("too_many")
        return value


class MerchantApi(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [IsAuthenticated]
    throttle_classes = [MerchantKeyThrottle]

    @property
    def merchant(self) -> Merchant:
        return self.request.user.merchant

    @property
    def livemode(self) -> bool:
        """False for a test key: every object the request reads or writes is a sandbox one
        (merchants/sandbox.py)."""
        return self.request.auth.mode == ApiKey.Mode.LIVE

    def counts_to_read(self, merchant_id: int) -> Sequence[str]:
        """The cache counts this request's operation reads for the merchant of this id, read
        with the key's rate count in one round trip (ApiKeyAuthentication) and left on the
        request as `counts_read`; none by default."""
        return ()

    def _stored_key(self) -> str:
        # A live and a test request with the same Idempotency-Key are two operations. Keys
        # are ASCII (idempotency.request_key), so no live key can take this non-ASCII prefix.
        key = self.idempotency[0]
        return key if self.livemode else f"test·{key}"

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.idempotency = None
        # Only where POST is an operation: elsewhere the answer is 405, whatever the headers.
        if request.method == "POST" and hasattr(self, "post"):
            key = idempotency.request_key(request)
            fingerprint = idempotency.request_fingerprint(request)
            self.idempotency = (key, fingerprint)
            replayed = idempotency.replay(
                merchant=self.merchant, key=self._stored_key(), fingerprint=fingerprint
            )
            if replayed is not None:
                raise _Replay(replayed)

    def handle_exception(self, exc):
        if isinstance(exc, _Replay):
            return exc.response
        return super().handle_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        key = getattr(self, "idempotency", None)
        # Only an answer that did something is kept (as Stripe does): a refused request changed
        # nothing, so its retry, maybe corrected, simply runs again.
        if (
            key is not None
            and response.status_code < 400
            and "Idempotent-Replayed" not in response
            and not getattr(response, "remembered", False)
        ):
            response.render()
            idempotency.remember(
                merchant=self.merchant,
                key=self._stored_key(),
                fingerprint=key[1],
                response=response,
                writes=getattr(self, "writes", None),
            )
            response.remembered = True
        return response

    def remembered(self, response: Response) -> Response:
        """`response` rendered and kept for replays now, in the caller's transaction: an
        operation that moves money calls it inside the transaction that moves it, so the answer
        a retry gets commits with the money, never after it (a crash in between would otherwise
        leave a payment whose retry is refused or decided again)."""
        return self.finalize_response(self.request, response)

    def service_key(self) -> str | None:
        return self.idempotency[0] if self.idempotency else None


# A run of 19 digits or more: an integer orjson would read as a float where json reads an int.
_LONG_NUMBER = re.compile(rb"\d{19}")


def json_body(request: Request) -> Any:
    """`request.data` for a JSON object sent as `application/json`, parsed by orjson in one
    call instead of DRF's parser negotiation, stream and decoder (BENCHMARKS.md, issue 19 part
    9). orjson reads every JSON text as the json module does but for what it refuses (NaN,
    an infinite float, a lone surrogate) and integers beyond 64 bits, which it makes floats:
    a body with any of them, another content type or anything but an object goes through
    request.data, so every error stays DRF's, word for word."""
    if request.content_type == "application/json":
        body = request.body
        if _LONG_NUMBER.search(body) is None:
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                pass
            else:
                if type(data) is dict:
                    return data
    return request.data


def validated(input_: type[serializers.Serializer], data: Any) -> dict:
    """`input_(data=data)`'s validated data, or its ValidationError, as is_valid(raise_exception=
    True) gives them, from one serializer of the class per process: DRF deep-copies each
    declared field into every new serializer, a tenth of a payment's Python (BENCHMARKS.md,
    issue 19 part 5). run_validation keeps nothing on the serializer; for an input whose
    validation reads neither its context nor an instance, which every request then shares."""
    return shared(input_).run_validation(data)


def represented(output: type[serializers.Serializer], instance: Any) -> dict:
    """`output(instance).data`, from one serializer of the class per process. DRF builds a
    serializer's fields again for each instance (a ModelSerializer introspects its model and
    deep-copies each declared field): 0.8 to 2 ms of processor time for an authorization's
    answer, against 0.1 ms for the representation itself (BENCHMARKS.md). For an output whose
    representation reads neither its context nor its instance state, which every request (and
    thread) then shares safely."""
    return shared(output).to_representation(instance)


@functools.cache
def shared(output: type[serializers.Serializer]) -> Any:
    """The one serializer of its class this process uses (see validated and represented)."""
    serializer = output()
    _messages_in_each_language(serializer)
    return serializer


def _messages_in_each_language(field: Any) -> None:
    """DRF writes a bound's message (max_length, min_value...) as a lazy_format, which keeps the
    text it first renders: in a serializer shared by every request, the first caller's language
    would answer every later caller. Each becomes a message rendered at each use, in the
    language of the request at hand."""
    for validator in getattr(field, "validators", ()):
        message = getattr(validator, "message", None)
        if isinstance(message, lazy_format) and message.format_string is not None:
            validator.message = _each_time(message.format_string, message.args, message.kwargs)
    for child in getattr(field, "fields", {}).values():
        _messages_in_each_language(child)
    if getattr(field, "child", None) is not None:
        _messages_in_each_language(field.child)


def _each_time(format_string: Any, args: tuple, kwargs: dict) -> Any:
    return lazy(lambda: str(format_string).format(*args, **kwargs), str)()


class _Replay(Exception):  # control flow carrying a stored response, not an error
    def __init__(self, response):
        self.response = response


LIVEMODE_HELP = (
    "true with a live key (sk_live_), false with a test key (sk_test_): a test key sees and "
    "writes only sandbox objects, which move no money (see the sandbox section of the docs)."
)

IDEMPOTENCY_KEY = OpenApiParameter(
    idempotency.HEADER,
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
    OpenApiParameter.HEADER,
    required=True,
    description="Required on every POST: a unique string per operation (a UUID), 1 to 255 "
    "visible ASCII characters; missing, the answer is 400 idempotency_key_required. A retry "
    "with the same key and body gets the first response back, byte for byte, with the header "
    "Idempotent-Replayed: true, and moves no money; the same key with another body is refused "
    "with 409 idempotency_conflict.",
)


ERROR_EXAMPLE = OpenApiExample(
    "Error",
    response_only=True,
    status_codes=["400"],
    value={
        "error": {
            "code": "invalid_amount",
            "message": "The amount must be a whole number of cents, greater than zero.",
            "field": "amount",
        }
    },
)


# The schema of a page of a list, as Cursor answers it; each list's page adds its results. (A
# comment, not a docstring: a serializer's docstring is its description in the OpenAPI schema.)
class Page(serializers.Serializer):
    livemode = serializers.BooleanField(help_text=LIVEMODE_HELP)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class Cursor(CursorPagination):
    page_size = 25
    max_page_size = 100
    page_size_query_param = "limit"
    invalid_cursor_message = _("This cursor is not valid: use a next or previous link as given.")

    def get_page_size(self, request):
        # DRF would read "0", "-3" or "abc" as the default page and "500" as 100: a client
        # asking for what the API does not give is told so, not given something else.
        text = request.query_params.get(self.page_size_query_param)
        if text is None:
            return self.page_size
        if not (text.isascii() and text.isdigit() and 1 <= int(text) <= self.max_page_size):
            raise serializers.ValidationError(
                {"limit": _("The limit must be a whole number from 1 to 100.")}
            )
        return int(text)

    def decode_cursor(self, request):
        # DRF answers a cursor it cannot read with 404, as if the list did not exist.
        try:
            return super().decode_cursor(request)
        except NotFound as exc:
            raise serializers.ValidationError({"cursor": self.invalid_cursor_message}) from exc


# The query parameters of the lists, documented once with their bounds.
CURSOR = OpenApiParameter(
    "cursor",
    str,
    description="Where the page starts: the `cursor` of a `next` or `previous` link, as given. "
    "Any other value is refused with 400 invalid_request.",
)
LIMIT = OpenApiParameter(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": 100, "default": 25},
    description="Objects per page, from 1 to 100 (25 by default); out of range, 400.",
)


def created_filter(name: str, bound: str) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        OpenApiTypes.DATETIME,
        description=f"Only objects created {bound} this instant. An RFC 3339 date-time with its "
        "offset (2026-11-22T09:00:00Z or 2026-11-22T10:00:00+01:00); without an offset, 400.",
    )


CREATED_GTE = created_filter("created_gte", "at or after")
CREATED_LT = created_filter("created_lt", "before")


def paginated(
    view: APIView,
    queryset: QuerySet,
    output: type[serializers.Serializer],
    *,
    ordering: str,
    filterset_class: type[django_filters.FilterSet] | None = None,
) -> Response:
    """The page the request asks for of `queryset`, filtered by the request's query parameters
    when the list has filters."""
    # A parameter the list does not document (`?=x`, a misspelt filter) is refused, not read
    # as no filter: the client would take the whole list for the filtered one.
    known = {"cursor", "limit", *(filterset_class.base_filters if filterset_class else ())}
    for name in view.request.query_params:
        if name not in known:
            raise serializers.ValidationError(
                {name or "non_field_errors": _("This list does not take this parameter.")}
            )
    if filterset_class is not None:
        for name, value in view.request.query_params.items():
            # django-filter skips an empty value; the schema documents an instant or an enum
            # value, so `?created_lt=` is a client's mistake, not "no filter".
            typed = (django_filters.ChoiceFilter, UtcDateTimeFilter)
            if not value and isinstance(filterset_class.base_filters.get(name), typed):
                raise serializers.ValidationError({name: _("This parameter cannot be empty.")})
        filtered = filterset_class(view.request.query_params, queryset=queryset)
        if not filtered.is_valid():
            raise serializers.ValidationError(filtered.errors)
        queryset = filtered.qs
    paginator = Cursor()
    paginator.ordering = ordering
    page = paginator.paginate_queryset(queryset, view.request, view=view)
    response = paginator.get_paginated_response(output(page, many=True).data)
    response.data = {"livemode": view.livemode, **response.data}
    return response


class UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 instant, read in UTC: any offset a client sends (ISO allows +17:28;
    PostgreSQL refuses offsets past ±15:59) names the same instant. An instant that exists only
    with its offset (9999-12-31T23:59:59-23:59 is in year 10000 in UTC) is invalid input."""

    default_error_messages = {
        "out_of_range": _("This date is outside the range of dates the API handles."),
        "offset_required": _(
            "Give the date-time with its offset, such as 2026-11-22T09:00:00Z or "
            "2026-11-22T10:00:00+01:00."
        ),
    }

    def to_python(self, value):
        # Without an offset the instant is ambiguous; reading it as Paris time would shift an
        # integrator's UTC filter by an hour or two without a word.
        if isinstance(value, str) and value.strip():
            try:
                parsed = parse_datetime(value.strip())
            except ValueError:
                parsed = None  # not a date-time at all: the parent field says so
            if parsed is not None and parsed.tzinfo is None:
                raise forms.ValidationError(
                    self.error_messages["offset_required"], code="offset_required"
                )
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError as exc:
            raise forms.ValidationError(
                self.error_messages["out_of_range"], code="out_of_range"
            ) from exc


class UtcDateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField
