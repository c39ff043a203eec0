from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

import core.converters  # noqa: F401  (the <ref:...> path converter)
from merchant_api import api
from merchant_api import settlements as api_settlements

app_name = "merchant_api"

urlpatterns = [
    path("authorizations", api.AuthorizationListCreateApi.as_view(), name="authorizations"),
    path(
        "authorizations/<ref:reference>",
        api.AuthorizationDetailApi.as_view(),
        name="authorization",
    ),
    path("authorizations/<ref:reference>/capture", api.CaptureApi.as_view(), name="capture"),
    path("authorizations/<ref:reference>/reverse", api.ReverseApi.as_view(), name="reverse"),
    path("authorizations/<ref:reference>/refunds", api.RefundCreateApi.as_view(), name="refund"),
    path("captures", api.CaptureListApi.as_view(), name="captures"),
    path("captures/<ref:reference>", api.CaptureDetailApi.as_view(), name="capture-detail"),
    path("reversals", api.ReversalListApi.as_view(), name="reversals"),
    path("reversals/<ref:reference>", api.ReversalDetailApi.as_view(), name="reversal-detail"),
    path("refunds", api.RefundListApi.as_view(), name="refunds"),
    path("refunds/<ref:reference>", api.RefundDetailApi.as_view(), name="refund-detail"),
    path("api-keys", api.ApiKeyListCreateApi.as_view(), name="api-keys"),
    path("api-keys/<int:key_id>/revoke", api.ApiKeyRevokeApi.as_view(), name="api-key-revoke"),
    path("webhook-endpoints", api.WebhookEndpointListCreateApi.as_view(), name="webhook-endpoints"),
    path(
        "webhook-endpoints/<int:endpoint_id>/disable",
        api.WebhookEndpointDisableApi.as_view(),
        name="webhook-endpoint-disable",
    ),
    path("applications", api.MerchantApplicationApi.as_view(), name="applications"),
    path("settlements", api_settlements.SettlementListApi.as_view(), name="settlements"),
    path(
        "settlements/<ref:reference>",
        api_settlements.SettlementDetailApi.as_view(),
        name="settlement",
    ),
    path(
        "settlements/<ref:reference>/statement.csv",
        api_settlements.SettlementStatementCsvApi.as_view(),
        name="settlement-statement",
    ),
    path("schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularRedocView.as_view(url_name="merchant_api:schema"), name="docs"),
]
