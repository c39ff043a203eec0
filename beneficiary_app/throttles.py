"""Rate limits of the app API, counted in the cache (rates: settings
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]). Past a limit the answer is 429 with Retry-After."""

import hashlib
import ipaddress
from collections.abc import Mapping

from rest_framework.throttling import SimpleRateThrottle

from beneficiary_app.services import InvalidContact, contact_parse

# The block one IPv6 subscriber gets: counting each address would give a client 2**64 budgets.
_IPV6_CLIENT_PREFIX = 64


class ContactThrottle(SimpleRateThrottle):
    """Counted per contact, whether or not it is known (a limit that only known contacts met
    would tell which ones are), in its canonical form: the form sign-in matches the recorded
    contact with, so "Sam@Gmail.com" and "sam@gmail.com" share one budget."""

    def get_cache_key(self, request, view):
        data = request.data
        contact = data.get("contact") if isinstance(data, Mapping) else None
        if not isinstance(contact, str):
            return None  # the view refuses the request
        try:
            value = contact_parse(contact).value
        except InvalidContact:
            return None  # the view refuses it too: no code is asked or tried
        # Hashed: a contact is personal data, and cache keys end up in logs and dumps.
        ident = hashlib.sha256(value.encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class SignInCodeContactThrottle(ContactThrottle):
    """Codes asked for one contact in an hour."""

    scope = "app_sign_in_code_contact"


class SignInCodeContactDailyThrottle(ContactThrottle):
    """Codes asked for one contact in a day."""

    scope = "app_sign_in_code_contact_day"


class SignInTokenContactDailyThrottle(ContactThrottle):
    """Codes tried for one contact in a day, right or wrong: with the codes' own limit of
    wrong tries, this bounds the guesses at one contact whatever the number of codes."""

    scope = "app_sign_in_token_contact_day"


class ClientIpThrottle(SimpleRateThrottle):
    def get_ident(self, request):
        ident = super().get_ident(request)
        try:
            address = ipaddress.ip_address(ident)
        except ValueError:
            return ident
        if address.version == 4:
            return ident
        if address.ipv4_mapped is not None:  # ::ffff:192.0.2.1 is an IPv4 client
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/{_IPV6_CLIENT_PREFIX}", strict=False))

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
