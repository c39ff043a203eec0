from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView

import core.converters  # noqa: F401  (the <ref:...> path converter)
from beneficiary_app import api, notifications_api

app_name = "app_api"

SCHEMA_SETTINGS = {
    "TITLE": "Aid wallet app API",
    "DESCRIPTION": "The beneficiary app: sign in with a one-time code, see each pocket of aid "
    "with its rules in plain words, the history, where to spend; freeze a card; show a "
    "payment code. Texts follow Accept-Language (fr by default, en).",
    "SERVERS": [{"url": "/api/app/v1"}],
}

urlpatterns = [
    path("auth/code", api.SignInCodeApi.as_view(), name="auth-code"),
    path("auth/token", api.SignInTokenApi.as_view(), name="auth-token"),
    path("auth/sign-out", api.SignOutApi.as_view(), name="sign-out"),
    path(
        "auth/sign-out-everywhere", api.SignOutEverywhereApi.as_view(), name="sign-out-everywhere"
    ),
    path("me", api.MeApi.as_view(), name="me"),
    path("aidants", api.AidantListCreateApi.as_view(), name="aidants"),
    path("aidants/<int:aidant_id>", api.AidantDetailApi.as_view(), name="aidant"),
    path("pockets", api.PocketListApi.as_view(), name="pockets"),
    path("pockets/<int:pocket_id>", api.PocketDetailApi.as_view(), name="pocket"),
    path("pockets/<int:pocket_id>/merchants", api.PlaceListApi.as_view(), name="pocket-merchants"),
    path("history", api.HistoryListApi.as_view(), name="history"),
    path("history/<ref:reference>", api.PaymentDetailApi.as_view(), name="payment"),
    path("cards", api.CardListApi.as_view(), name="cards"),
    path("cards/<ref:reference>/freeze", api.CardFreezeApi.as_view(), name="card-freeze"),
    path("cards/<ref:reference>/unfreeze", api.CardUnfreezeApi.as_view(), name="card-unfreeze"),
    path(
        "cards/<ref:reference>/report-lost",
        api.CardReportLostApi.as_view(),
        name="card-report-lost",
    ),
    path("payment-codes", api.PaymentCodeApi.as_view(), name="payment-codes"),
    path(
        "notification-preferences",
        notifications_api.NotificationPreferencesApi.as_view(),
        name="notification-preferences",
    ),
    path(
        "push-subscriptions",
        notifications_api.PushSubscriptionsApi.as_view(),
        name="push-subscriptions",
    ),
    path(
        "schema",
        SpectacularAPIView.as_view(urlconf="beneficiary_app.urls", custom_settings=SCHEMA_SETTINGS),
        name="schema",
    ),
    path("docs", SpectacularRedocView.as_view(url_name="app_api:schema"), name="docs"),
]
