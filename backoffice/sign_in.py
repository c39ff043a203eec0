"""The second factor's pages: give one after the password, set up the first one, see recovery
codes once, add a passkey (backoffice.second_factor holds the rules)."""

from urllib.parse import urlencode

import django_otp
import segno
from django.contrib import admin
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.translation import gettext as _
from django.views import View
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from backoffice import second_factor
from backoffice.models import Passkey

_CODES = "recovery_codes_to_show"


class _StaffView(LoginRequiredMixin, View):
    login_url = reverse_lazy("admin:login")

    def dispatch(self, request, *args, **kwargs):
        # The admin's second factor is staff's: anyone else (a shop's member, whose till has
        # its own) is sent to the admin's sign-in, as the admin itself does.
        if request.user.is_authenticated and not request.user.is_staff:
            return redirect(reverse("admin:login"))
        return super().dispatch(request, *args, **kwargs)

    def page(self, request, template: str, **context):
        context = {
            **admin.site.each_context(request),
            "next": second_factor.safe_next(request, reverse("admin:index")),
            **context,
        }
        return render(request, f"backoffice/second_factor/{template}", context)


class VerifyView(_StaffView):
    """After the password: a code from the app or a recovery code, or the passkey."""

    def get(self, request):
        if request.user.is_verified():
            return redirect(second_factor.safe_next(request, reverse("admin:index")))
        return self._form(request)

    def _form(self, request, error: str = "", status: int = 200):
        response = self.page(
            request,
            "verify.html",
            title=_("Second factor"),
            error=error,
            has_passkey=Passkey.objects.filter(user=request.user, confirmed=True).exists(),
        )
        response.status_code = status
        return response

    def post(self, request):
        device = second_factor.code_verify(user=request.user, code=request.POST.get("code", ""))
        if device is None:
            return self._form(
                request,
                _("This code is not right, or was already used. Wait a little and try again."),
                status=400,
            )
        django_otp.login(request, device)
        return redirect(second_factor.safe_next(request, reverse("admin:index")))


class SetupView(_StaffView):
    """The first factor of someone who has none: scan the secret into an authenticator app,
    type its first code."""

    def dispatch(self, request, *args, **kwargs):
        user = request.user
        if user.is_authenticated and user.is_staff and second_factor.has_factor(user):
            # A factor is added from a verified session only (FactorsView), never on a
            # password alone.
            return redirect(reverse("second-factor-verify"))
        return super().dispatch(request, *args, **kwargs)

    def _form(self, request, error: str = "", status: int = 200):
        device = second_factor.app_setup_start(user=request.user)
        response = self.page(
            request,
            "setup.html",
            title=_("Set up your second factor"),
            error=error,
            key=second_factor.app_key_base32(device),
            qr_code=segno.make(device.config_url, error="m").svg_data_uri(scale=4),
        )
        response.status_code = status
        return response

    def get(self, request):
        return self._form(request)

    def post(self, request):
        device = second_factor.app_setup_start(user=request.user)
        codes = second_factor.app_setup_confirm(device=device, code=request.POST.get("code", ""))
        if codes is None:
            return self._form(
                request, _("This code is not right. Type the code your app shows now."), 400
            )
        django_otp.login(request, device)
        request.session[_CODES] = codes
        next_url = second_factor.safe_next(request, reverse("admin:index"))
        query = urlencode({"next": next_url})
        return redirect(f"{reverse('second-factor-recovery-codes')}?{query}")


class RecoveryCodesView(_StaffView):
    """The recovery codes, shown once: right after they were made."""

    def get(self, request):
        codes = request.session.pop(_CODES, None)
        if not codes:
            return redirect(reverse("second-factor"))
        return self.page(request, "recovery_codes.html", title=_("Recovery codes"), codes=codes)

    def post(self, request):
        request.session[_CODES] = second_factor.recovery_codes_renew(user=request.user)
        return HttpResponseRedirect(reverse("second-factor-recovery-codes"))


class FactorsView(_StaffView):
    """The person's factors: their app, their passkeys, how many recovery codes are left."""

    def get(self, request):
        user = request.user
        recovery = StaticDevice.objects.filter(user=user, confirmed=True).first()
        return self.page(
            request,
            "factors.html",
            title=_("Your second factor"),
            apps=TOTPDevice.objects.filter(user=user, confirmed=True),
            passkeys=Passkey.objects.filter(user=user, confirmed=True).order_by("pk"),
            recovery_left=recovery.token_set.count() if recovery else 0,
        )


def _passkey_refused(error: second_factor.PasskeyRefused) -> JsonResponse:
    return JsonResponse(
        {"error": {"code": error.code, "message": str(error.message), "field": None}}, status=400
    )


class PasskeySignInView(_StaffView):
    """GET: the challenge for the browser; POST: its signed answer, which verifies the
    session."""

    def get(self, request):
        return HttpResponse(
            second_factor.passkey_authentication_options(request=request),
            content_type="application/json",
        )

    def post(self, request):
        try:
            credential = second_factor.passkey_credential(request.body)
            passkey = second_factor.passkey_verify(request=request, credential=credential)
        except second_factor.PasskeyRefused as error:
            return _passkey_refused(error)
        django_otp.login(request, passkey)
        return JsonResponse({"next": second_factor.safe_next(request, reverse("admin:index"))})


class PasskeyAddView(_StaffView):
    """GET: the options to make a passkey; POST: the passkey made, kept as a factor."""

    def get(self, request):
        return HttpResponse(
            second_factor.passkey_registration_options(request=request),
            content_type="application/json",
        )

    def post(self, request):
        try:
            credential = second_factor.passkey_credential(request.body)
            second_factor.passkey_register(
                request=request, credential=credential, name=str(credential.get("name", ""))
            )
        except second_factor.PasskeyRefused as error:
            return _passkey_refused(error)
        return JsonResponse({"next": reverse("second-factor")})
