from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from landing.views import LandingView
from notifications.views import email_tracking, sms_brevo, sms_inbound
from stripe_issuing.webhooks import stripe_webhook

urlpatterns = [
    path("", LandingView.as_view(), name="landing"),
    # Named so that the admin's sign-in page offers "Forgotten your password?"; staff invited
    # by their funder choose their first password through the same pages.
    path(
        "admin/password_reset/",
        auth_views.PasswordResetView.as_view(),
        name="admin_password_reset",
    ),
    path(
        "admin/password_reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "admin/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "admin/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("admin/second-factor/", include("backoffice.urls")),
    path("admin/", admin.site.urls),
    path("api/merchant/v1/", include("merchant_api.urls")),
    path("hooks/sms/inbound", sms_inbound, name="sms-inbound"),
    path("hooks/sms/brevo", sms_brevo, name="sms-brevo"),
    path("hooks/email/<slug:provider>/tracking/", email_tracking, name="email-tracking"),
    path("hooks/stripe", stripe_webhook, name="stripe-webhook"),
    path("api/app/v1/", include("beneficiary_app.urls")),
    path("app/", include("beneficiary_app.web.urls")),
    path("shop/", include("shop.urls")),
    path("", include("operations.urls")),
]

handler400 = "core.api_errors.bad_request"
handler404 = "core.api_errors.not_found"
handler500 = "core.api_errors.server_error"
