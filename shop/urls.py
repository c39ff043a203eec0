from django.urls import path
from django.views.generic import RedirectView

from shop.views import access, account, installable, onboarding, payments

app_name = "shop"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="shop:pay"), name="home"),
    path("sw.js", installable.service_worker, name="service-worker"),
    path("offline/", installable.offline, name="offline"),
    path("sign-in/", access.sign_in, name="sign-in"),
    path("sign-in/code/", access.second_factor, name="second-factor"),
    path("sign-out/", access.sign_out, name="sign-out"),
    path("register/", onboarding.register, name="register"),
    path("register/details/", onboarding.register_details, name="register-details"),
    path("register/done/", onboarding.registered, name="registered"),
    path("join/<str:token>/", onboarding.join_team, name="join-team"),
    path("pay/", payments.pay, name="pay"),
    path("today/", payments.today, name="today"),
    path("payments/<str:reference>/", payments.payment, name="payment"),
    path("payments/<str:reference>/receipt/", payments.receipt, name="receipt"),
    path("payments/<str:reference>/<str:action>/", payments.operation, name="operation"),
    path("shop/", account.details, name="details"),
    path("settlements/", account.settlements, name="settlements"),
    path("settlements/<str:reference>/", account.statement, name="statement"),
    path("settlements/<str:reference>/csv/", account.statement_download, name="statement-csv"),
    path("team/", account.team, name="team"),
    path("team/<int:member_id>/remove/", account.team_remove, name="team-remove"),
    path("integrations/", account.integrations, name="integrations"),
    path("integrations/keys/", account.api_key_new, name="api-key-new"),
    path(
        "integrations/keys/<int:key_id>/revoke/", account.api_key_revoke_view, name="api-key-revoke"
    ),
    path("integrations/webhooks/", account.webhook_new, name="webhook-new"),
    path(
        "integrations/webhooks/<int:endpoint_id>/disable/",
        account.webhook_disable,
        name="webhook-disable",
    ),
]
