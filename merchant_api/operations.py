"""What captures, reversals and refunds share: each is an operation on one of the merchant's
authorizations, made by a POST under the authorization and listed and retrieved at its own path.
The response to the POST is the operation, in the one shape it has everywhere (its list, its
detail, its webhook event); the authorization's new state is at GET /authorizations/{id}."""

from collections.abc import Callable

import django_filters
from django.db import IntegrityError, transaction
from django.db.models import Model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers, status
from rest_framework.response import Response

from core.one_statement import OneStatement, one_statement_available
from merchant_api import idempotency
from merchant_api.base import (
    CREATED_GTE,
    CREATED_LT,
    CURSOR,
    LIMIT,
    LIVEMODE_HELP,
    AmountField,
    MerchantApi,
    UtcDateTimeFilter,
    paginated,
    represented,
)
from merchants.models import Merchant
from wallet.models import Decision


# The fields every operation shows; each operation's Output names its model and object.
class OperationOutput(serializers.ModelSerializer):
    id = serializers.CharField(source="reference")
    object = serializers.SerializerMethodField()
    authorization = serializers.CharField(source="decision.reference")
    created = serializers.DateTimeField(source="created_at")
    livemode = serializers.BooleanField(read_only=True, help_text=LIVEMODE_HELP)

    class Meta:
        fields = ["id", "object", "livemode", "authorization", "amount", "created"]


class AmountInput(serializers.Serializer):
    # The input of a capture and of a reversal: one schema component for both.
    amount = AmountField(required=False, help_text="Leave out for the whole amount held.")


class OperationFilter(django_filters.FilterSet):
    created_gte = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_lt = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")
    authorization = django_filters.CharFilter(field_name="decision__reference")


# The filters and paging of every operation's list, as documented.
OPERATION_LIST_PARAMETERS = [
    OpenApiParameter("authorization", str),
    CREATED_GTE,
    CREATED_LT,
    CURSOR,
    LIMIT,
]


def operation_page(
    view: MerchantApi, model: type[Model], output: type[serializers.Serializer]
) -> Response:
    """A page of the merchant's operations of one kind, newest first, filtered as documented."""
    operations = model.objects.filter(decision__merchant=view.merchant, livemode=view.livemode)
    return paginated(
        view,
        operations.select_related("decision"),
        output,
        ordering="-created_at",
        filterset_class=OperationFilter,
    )


def operation_detail(
    view: MerchantApi,
    model: type[Model],
    output: type[serializers.Serializer],
    reference: str,
) -> Response:
    """One of the merchant's operations; another merchant's answers 404."""
    operation = get_object_or_404(
        model.objects.select_related("decision"),
        reference=reference,
        decision__merchant=view.merchant,
        livemode=view.livemode,
    )
    return Response(output(operation).data)


def own_authorization(*, merchant: Merchant, reference: str, livemode: bool) -> Decision:
    # Its API's only: a card payment at the merchant is captured by the card network. Of the
    # key's mode only: a live id answers 404 to a test key, and the reverse.
    return get_object_or_404(
        Decision,
        reference=reference,
        merchant=merchant,
        channel=Decision.Channel.API,
        livemode=livemode,
    )


def operation_created(output: type[serializers.Serializer], operation: object) -> Response:
    return Response(represented(output, operation), status=status.HTTP_201_CREATED)


# Tries of an operation's one statement (see OperationCreateApi.committed).
_ATTEMPTS = 3


class OperationCreateApi(MerchantApi):
    """The POST of a capture, a refund or a reversal."""

    def committed(
        self, output: type[serializers.Serializer], operate: Callable[[OneStatement | None], Model]
    ) -> Response:
        """`operate(writes)`'s operation, answered 201, with the answer a retry will get stored
        in the transaction that moves the money: never after it (a crash in between would leave
        money moved whose retry is refused). On PostgreSQL a live operation writes into `writes`
        (core/one_statement.py), run here after its answer is added to it."""
        attempt = 1
        while True:
            self.writes = OneStatement() if self.livemode and one_statement_available() else None
            try:
                with transaction.atomic():
                    answer = self.remembered(operation_created(output, operate(self.writes)))
                    if self.writes is not None:
                        self.writes.run(commit=True)
                    return answer
            except IntegrityError:
                # Only the one statement's writes get here (the ORM's path settles its races in
                # run_idempotent): a concurrent call under this key, on another authorization,
                # committed first, or a hold was resolved without the wallet's lock. Rolled back
                # whole: that call's answer, or the operation done again on fresh rows.
                if self.writes is None or attempt == _ATTEMPTS:
                    raise
                attempt += 1
                assert self.idempotency is not None  # a POST always has its key (initial())
                replayed = idempotency.replay(
                    merchant=self.merchant, key=self._stored_key(), fingerprint=self.idempotency[1]
                )
                if replayed is not None:
                    return replayed
