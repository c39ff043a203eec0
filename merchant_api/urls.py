from django.urls import path

import core.converters  # noqa: F401  (the <ref:...> path converter)
from core.api_docs import ApiDocsView, ApiSchemaView
from merchant_api import (
    api_keys,
    applications,
    authorizations,
    captures,
    refunds,
    reversals,
    settlements,
    webhook_endpoints,
)

app_name = "merchant_api"

urlpatterns = [
    path("authorizations", authorizations.AuthorizationsView.as_view(), name="authorizations"),
    path(
        "authorizations/<ref:reference>",
        authorizations.AuthorizationDetailApi.as_view(),
        name="authorization",
    ),
    path(
        "authorizations/<ref:reference>/capture",
        captures.CaptureCreateApi.as_view(),
        name="capture",
    ),
    path(
        "authorizations/<ref:reference>/reverse",
        reversals.ReversalCreateApi.as_view(),
        name="reverse",
    ),
    path(
        "authorizations/<ref:reference>/refunds",
        refunds.RefundCreateApi.as_view(),
        name="refund",
    ),
    path("captures", captures.CaptureListApi.as_view(), name="captures"),
    path("captures/<ref:reference>", captures.CaptureDetailApi.as_view(), name="capture-detail"),
    path("reversals", reversals.ReversalListApi.as_view(), name="reversals"),
    path(
        "reversals/<ref:reference>",
        reversals.ReversalDetailApi.as_view(),
        name="reversal-detail",
    ),
    path("refunds", refunds.RefundListApi.as_view(), name="refunds"),
    path("refunds/<ref:reference>", refunds.RefundDetailApi.as_view(), name="refund-detail"),
    path("api-keys", api_keys.ApiKeysView.as_view(), name="api-keys"),
    path(
        "api-keys/<int:key_id>/revoke",
        api_keys.ApiKeyRevokeApi.as_view(),
        name="api-key-revoke",
    ),
    path(
        "webhook-endpoints",
        webhook_endpoints.WebhookEndpointsView.as_view(),
        name="webhook-endpoints",
    ),
    path(
        "webhook-endpoints/<int:endpoint_id>/disable",
        webhook_endpoints.WebhookEndpointDisableApi.as_view(),
        name="webhook-endpoint-disable",
    ),
    path(
        "applications",
        applications.MerchantApplicationCreateApi.as_view(),
        name="applications",
    ),
    path("settlements", settlements.SettlementListApi.as_view(), name="settlements"),
    path(
        "settlements/<ref:reference>",
        settlements.SettlementDetailApi.as_view(),
        name="settlement",
    ),
    path(
        "settlements/<ref:reference>/statement.csv",
        settlements.SettlementStatementCsvApi.as_view(),
        name="settlement-statement",
    ),
    path("schema", ApiSchemaView.as_view(), name="schema"),
    path("docs", ApiDocsView.as_view(url_name="merchant_api:schema"), name="docs"),
]
