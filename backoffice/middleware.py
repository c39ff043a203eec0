"""The back office's doors: its pages stay out of search engines, and open only once the person
signed in gave their second factor."""

from urllib.parse import urlencode

from django.shortcuts import redirect
from django.urls import reverse


class AdminNotIndexed:
    """X-Robots-Tag: noindex on every response under the admin's URL, its sign-in and password
    reset pages included (robots.txt would only ask crawlers not to fetch them, and would list
    the admin's address for anyone to read)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(reverse("admin:index")):
            response["X-Robots-Tag"] = "noindex, nofollow"
        return response


class SecondFactorRequired:
    """No admin page opens on a password alone: a signed-in person whose session has not given
    a second factor yet (backoffice.second_factor) is sent to give one, or to set one up if they
    have none. The sign-in and sign-out pages, the password reset pages and the second factor's
    own pages stay open. Pages outside the admin do not use staff sessions (the app and the
    APIs have their own tokens)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            user.is_authenticated
            # Staff only: anyone else (a shop's member) is refused by the admin itself.
            and user.is_staff
            and request.path.startswith(reverse("admin:index"))
            and not user.is_verified()
            and not request.path.startswith(self._open_paths())
        ):
            # Imported here: the middleware module is read before the apps' models are ready.
            from backoffice.second_factor import has_factor

            target = "second-factor-verify" if has_factor(user) else "second-factor-setup"
            return redirect(f"{reverse(target)}?{urlencode({'next': request.get_full_path()})}")
        return self.get_response(request)

    @staticmethod
    def _open_paths() -> tuple[str, ...]:
        return (
            reverse("admin:login"),
            reverse("admin:logout"),
            reverse("admin_password_reset"),
            reverse("password_reset_done"),
            reverse("password_reset_complete"),
            reverse("admin:index") + "reset/",
            # Giving a factor, or setting up the first one (refused to whoever has one). Adding
            # a passkey or renewing recovery codes needs a verified session, as every page.
            reverse("second-factor-verify"),
            reverse("second-factor-setup"),
            reverse("second-factor-passkey-sign-in"),
        )
