"""The second factor's pages, under the admin's address (backoffice.second_factor)."""

from django.urls import path

from backoffice import sign_in

urlpatterns = [
    path("", sign_in.FactorsView.as_view(), name="second-factor"),
    path("verify/", sign_in.VerifyView.as_view(), name="second-factor-verify"),
    path("setup/", sign_in.SetupView.as_view(), name="second-factor-setup"),
    path(
        "recovery-codes/", sign_in.RecoveryCodesView.as_view(), name="second-factor-recovery-codes"
    ),
    path(
        "passkeys/sign-in/",
        sign_in.PasskeySignInView.as_view(),
        name="second-factor-passkey-sign-in",
    ),
    path("passkeys/add/", sign_in.PasskeyAddView.as_view(), name="second-factor-passkey-add"),
]
