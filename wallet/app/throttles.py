"""Rate limits of the app API, counted in the cache (rates: settings
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]). Past a limit the answer is 429 with Retry-After."""

import hashlib
from collections.abc import Mapping

from rest_framework.throttling import SimpleRateThrottle

from wallet.app.services import InvalidContact, contact_parse


class SignInCodeContactThrottle(SimpleRateThrottle):
    """Codes asked for one contact, whether or not it is known: a limit that only known
    contacts met would tell which ones are."""

    scope = "app_sign_in_code_contact"

    def get_cache_key(self, request, view):
        data = request.data
        contact = data.get("contact") if isinstance(data, Mapping) else None
        if not isinstance(contact, str):
            return None  # the view refuses the request
        try:
            value = contact_parse(contact).value
        except InvalidContact:
            return None
        # Hashed: a contact is personal data, and cache keys end up in logs and dumps.
        ident = hashlib.sha256(value.encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class ClientIpThrottle(SimpleRateThrottle):
    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class SignInCodeIpThrottle(ClientIpThrottle):
    """Codes asked from one address: one client spraying many contacts."""

    scope = "app_sign_in_code_ip"


class SignInTokenIpThrottle(ClientIpThrottle):
    """Codes tried from one address, right or wrong."""

    scope = "app_sign_in_token_ip"


class AppTokenThrottle(SimpleRateThrottle):
    """Requests per app token."""

    scope = "app_token"

    def get_cache_key(self, request, view):
        if request.auth is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.digest}
