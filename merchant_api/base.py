"""What every operation of the merchant API, /api/merchant/v1/, shares: the base view (API key,
throttle, idempotency), the fields amounts and metadata are read with, the error schema and the
cursor pagination of lists. Each resource has its own module, one class per operation with its
serializers and OpenAPI examples beside it.

Every POST takes an `Idempotency-Key` header (see merchant_api/idempotency.py); every object is
looked up through the authenticated merchant and the key's mode (live, or the sandbox's: see
merchants/sandbox.py), so another merchant's id, or an id of the other mode, answers 404."""

from datetime import UTC

import django_filters
from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import OpenApiExample, OpenApiParameter
from rest_framework import serializers
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from core.api_errors import ErrorOutput
from core.money import MAX_AMOUNT
from merchant_api import idempotency
from merchant_api.authentication import ApiKeyAuthentication
from merchants.models import ApiKey, Merchant


class StrictIntegerField(serializers.IntegerField):
    """Amounts are JSON integers of minor units: "12", 12.0 and true are refused, not coerced."""

    default_error_messages = {"invalid": "A whole number of cents is required, such as 1250."}

    def to_internal_value(self, data):
        if not isinstance(data, int) or isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


def amount_field(**kwargs) -> StrictIntegerField:
    return StrictIntegerField(min_value=1, max_value=MAX_AMOUNT, **kwargs)


class MetadataField(serializers.DictField):
    """Up to 20 string keys and values the merchant wants back, e.g. its order number."""

    child = serializers.CharField(max_length=500, allow_blank=True)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if len(value) > 20 or any(len(key) > 40 for key in value):
            raise serializers.ValidationError("At most 20 keys of at most 40 characters.")
        return value


class MerchantKeyThrottle(SimpleRateThrottle):
    """Requests per API key (rate: settings REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])."""

    scope = "merchant_key"

    def get_cache_key(self, request, view):
        # The key's digest, not its id: an id can be reused (a rolled-back insert), a digest not.
        return self.cache_format % {"scope": self.scope, "ident": request.auth.digest}


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

    def _stored_key(self) -> str:
        # A live and a test request with the same Idempotency-Key are two operations. Keys
        # are ASCII (idempotency.request_key), so no live key can take this non-ASCII prefix.
        key = self.idempotency[0]
        return key if self.livemode else f"test·{key}"

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.idempotency = None
        if request.method == "POST":
            key = idempotency.request_key(request)
            if key is not None:
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
        if key is not None and response.status_code < 500 and "Idempotent-Replayed" not in response:
            response.render()
            idempotency.remember(
                merchant=self.merchant,
                key=self._stored_key(),
                fingerprint=key[1],
                response=response,
            )
        return response

    def service_key(self) -> str | None:
        return self.idempotency[0] if self.idempotency else None


class _Replay(Exception):  # control flow carrying a stored response, not an error
    def __init__(self, response):
        self.response = response


LIVEMODE_HELP = (
    "true with a live key (sk_live_), false with a test key (sk_test_): a test key sees and "
    "writes only sandbox objects, which move no money (see the sandbox section of the docs)."
)

IDEMPOTENCY_KEY = OpenApiParameter(
    idempotency.HEADER,
    str,
    OpenApiParameter.HEADER,
    description="A unique string per operation (a UUID). A retry with the same key and body "
    "gets the first response back, byte for byte, and moves no money; the same key with another "
    "body is refused with 409 idempotency_conflict.",
)


ERRORS = {
    400: ErrorOutput,
    401: ErrorOutput,
    404: ErrorOutput,
    409: ErrorOutput,
    415: ErrorOutput,
    422: ErrorOutput,
    429: ErrorOutput,
    503: ErrorOutput,
}

ERROR_EXAMPLE = OpenApiExample(
    "Error",
    response_only=True,
    status_codes=["400"],
    value={
        "error": {
            "code": "invalid_request",
            "message": "A whole number of cents is required, such as 1250.",
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
    if filterset_class is not None:
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
    }

    def to_python(self, value):
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
