"""Who may use a till: signing in (e-mail and password, then a second factor for owners),
signing out, and the check every till page makes."""

import base64
import functools
import io
import time

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from rest_framework.throttling import BaseThrottle

from shop.forms import CodeForm, SignInForm
from shop.models import ShopMember
from shop.services import shop_member_for, sign_in_tries_left, totp_confirm, totp_device

_PENDING = "shop_pending_member"  # an owner who gave their password, not yet their code
_SIGNED_IN_AT = "shop_signed_in_at"

TOO_MANY = _("Too many tries. Wait a quarter of an hour, then try again.")


def client_ip(request) -> str:
    # DRF's reading of the client address: REMOTE_ADDR, or X-Forwarded-For behind NUM_PROXIES.
    return BaseThrottle().get_ident(request)


def _session_member(request) -> ShopMember | None:
    """The shop member of this session, if it is one, its session still young enough, and
    (for an owner) its second factor given. A funder's staff or an operator is none."""
    user = request.user
    if not user.is_authenticated or user.is_staff or user.is_superuser:
        return None
    member = ShopMember.objects.select_related("merchant").filter(user=user).first()
    if member is None:
        return None
    signed_in_at = request.session.get(_SIGNED_IN_AT, 0)
    if time.time() - signed_in_at > settings.SHOP_SESSION_MAX_HOURS * 3600:
        logout(request)
        return None
    if member.is_owner and not user.is_verified():
        return None
    return member


def member_required(view=None, *, owner: bool = False):
    """A till page: signed in as a member of a shop (its owner, with `owner`). The member is
    request.member, its shop request.member.merchant: every page reads through it."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            member = _session_member(request)
            if member is None:
                return redirect(f"{_sign_in_url()}?next={request.path}")
            if owner and not member.is_owner:
                raise PermissionDenied
            request.member = member
            return view(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


def _sign_in_url() -> str:
    return reverse("shop:sign-in")


def _next(request) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    # Only a till page: never an address elsewhere.
    return target if target.startswith("/shop/") and "//" not in target else "/shop/pay/"


def _start_session(request, member: ShopMember) -> None:
    login(request, member.user, backend="django.contrib.auth.backends.ModelBackend")
    request.session[_SIGNED_IN_AT] = int(time.time())


def sign_in(request):
    form = SignInForm(request.POST or None)
    error = None
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"]
        if not sign_in_tries_left(email=email, ip=client_ip(request)):
            error = TOO_MANY
        else:
            member = shop_member_for(email=email, password=form.cleaned_data["password"])
            if member is None:
                error = _("Wrong e-mail address or password.")
            elif member.is_owner:
                request.session.cycle_key()
                request.session[_PENDING] = member.pk
                return redirect(f"{_second_factor_url()}?next={_next(request)}")
            else:
                _start_session(request, member)
                return redirect(_next(request))
    return render(
        request,
        "shop/sign_in.html",
        {"form": form, "error": error, "next": _next(request)},
        status=429 if error == TOO_MANY else 200,
    )


def _second_factor_url() -> str:
    return reverse("shop:second-factor")


def _qr_data_url(text: str) -> str:
    out = io.BytesIO()
    segno.make_qr(text, error="m").save(out, kind="svg", scale=5, border=2, xmldecl=False)
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue()).decode()


def second_factor(request):
    """The owner's code; the first time, their authenticator app is set up here (a QR code to
    scan, or the key to type)."""
    member = ShopMember.objects.filter(pk=request.session.get(_PENDING)).select_related("user")
    member = member.first()
    if member is None:
        return redirect(_sign_in_url())
    device = totp_device(member)
    form = CodeForm(request.POST or None)
    error = None
    if request.method == "POST" and form.is_valid():
        if not sign_in_tries_left(email=member.email, ip=client_ip(request)):
            error = TOO_MANY
        elif not device.verify_is_allowed()[0]:
            # django-otp doubles the wait after each wrong code.
            error = _("Wrong code typed just before: wait a few seconds, then type the new code.")
        elif totp_confirm(device=device, token=form.cleaned_data["code"]):
            del request.session[_PENDING]
            _start_session(request, member)
            otp_login(request, device)
            return redirect(_next(request))
        else:
            error = _("This code is not the right one. Type the code your app shows now.")
    context = {"form": form, "error": error, "next": _next(request), "setup": not device.confirmed}
    if not device.confirmed:
        context["qr"] = _qr_data_url(device.config_url)
        context["key"] = base64.b32encode(device.bin_key).decode()
    return render(
        request, "shop/second_factor.html", context, status=429 if error == TOO_MANY else 200
    )


@require_POST
def sign_out(request):
    logout(request)
    messages.success(request, _("You are signed out."))
    return redirect(_sign_in_url())
