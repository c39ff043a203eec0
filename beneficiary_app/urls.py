from django.urls import path

import core.converters  # noqa: F401  (the <ref:...> path converter)
from beneficiary_app.api import (
    aidants,
    auth,
    cards,
    history,
    me,
    notification_preferences,
    payment_codes,
    payments,
    places,
    pockets,
    push_subscriptions,
)
from core.api_docs import ApiDocsView, ApiSchemaView

app_name = "app_api"

SCHEMA_SETTINGS = {
    "TITLE": "Aid wallet app API",
    "DESCRIPTION": "The beneficiary app: sign in with a one-time code, see each pocket of aid "
    "with its rules in plain words, the history, where to spend; freeze a card; show a "
    "payment code. Texts follow Accept-Language (fr by default, en).",
    "SERVERS": [{"url": "/api/app/v1"}],
    "WEBHOOKS": [],  # the merchant API's events are not the app's
}

urlpatterns = [
    path("auth/code", auth.SignInCodeApi.as_view(), name="auth-code"),
    path("auth/token", auth.SignInTokenApi.as_view(), name="auth-token"),
    path("auth/sign-out", auth.SignOutApi.as_view(), name="sign-out"),
    path(
        "auth/sign-out-everywhere", auth.SignOutEverywhereApi.as_view(), name="sign-out-everywhere"
    ),
    path("me", me.MeView.as_view(), name="me"),
    path("aidants", aidants.AidantsView.as_view(), name="aidants"),
    path("aidants/<int:aidant_id>", aidants.AidantRevokeApi.as_view(), name="aidant"),
    path("pockets", pockets.PocketListApi.as_view(), name="pockets"),
    path("pockets/<int:pocket_id>", pockets.PocketDetailApi.as_view(), name="pocket"),
    path(
        "pockets/<int:pocket_id>/merchants", places.PlaceListApi.as_view(), name="pocket-merchants"
    ),
    path("history", history.HistoryListApi.as_view(), name="history"),
    path("history/<ref:reference>", payments.PaymentDetailApi.as_view(), name="payment"),
    path("cards", cards.CardListApi.as_view(), name="cards"),
    path("cards/<ref:reference>/freeze", cards.CardFreezeApi.as_view(), name="card-freeze"),
    path("cards/<ref:reference>/unfreeze", cards.CardUnfreezeApi.as_view(), name="card-unfreeze"),
    path(
        "cards/<ref:reference>/report-lost",
        cards.CardReportLostApi.as_view(),
        name="card-report-lost",
    ),
    path("payment-codes", payment_codes.PaymentCodeCreateApi.as_view(), name="payment-codes"),
    path(
        "notification-preferences",
        notification_preferences.NotificationPreferencesView.as_view(),
        name="notification-preferences",
    ),
    path(
        "push-subscriptions",
        push_subscriptions.PushSubscriptionsView.as_view(),
        name="push-subscriptions",
    ),
    path(
        "schema",
        ApiSchemaView.as_view(urlconf="beneficiary_app.urls", custom_settings=SCHEMA_SETTINGS),
        name="schema",
    ),
    path("docs", ApiDocsView.as_view(url_name="app_api:schema"), name="docs"),
]
