from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions

from core.authentication import BearerAuthentication
from merchant_api.throttles import counted_request
from merchants.api_keys import api_key_active, api_key_held_merchant, api_key_remember
from merchants.models import ApiKey, Merchant
from merchants.services import merchant_ensure_active

# last_used_at is informative; writing it on every request would make each key a hot row.
_LAST_USED_RESOLUTION = timedelta(minutes=1)


class MerchantPrincipal:
    """What request.user is on the merchant API: the merchant behind the key."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, key: ApiKey):
        self.key = key
        self.merchant: Merchant = key.merchant


class ApiKeyAuthentication(BearerAuthentication):
    """`Authorization: Bearer sk_live_...`: the key's SHA-256 digest is looked up, in the
    process' memory when the keys' generation, read in the round trip that counts the request
    against the key's rate, is the one the key was read under (merchants/api_keys.py). The
    same round trip reads the counts the view asks for (`counts_to_read(merchant_id)`)."""

    malformed_message = _("Send the API key as: Bearer <key>.")
    invalid_message = _("This API key is not valid.")

    def authenticate(self, request):
        # The rate's count is left on it for MerchantKeyThrottle, the counts read for the view.
        self.request = request
        return super().authenticate(request)

    def authenticate_secret(self, secret: str) -> tuple[MerchantPrincipal, ApiKey]:
        digest = ApiKey.digest_of(secret)
        # The counts the operation reads (the code guard's), in the same round trip, when this
        # process holds the key and so knows its merchant; the view checks they are its own.
        # Every view authenticated by an API key is a MerchantApi (a test walks the URLs).
        view = self.request.parser_context["view"]
        merchant_id = api_key_held_merchant(digest)
        counts = view.counts_to_read(merchant_id) if merchant_id is not None else ()
        self.request.merchant_key_window, generation, self.request.counts_read = counted_request(
            digest, counts
        )
        key = api_key_active(digest, generation=generation)
        if key is None:
            raise exceptions.AuthenticationFailed(_("This API key is not valid or was revoked."))
        # A merchant awaiting approval or suspended keeps its keys but may use none of the API:
        # no payment, no new key, no webhook endpoint (403 merchant_not_active).
        merchant_ensure_active(merchant=key.merchant)
        now = timezone.now()
        if key.last_used_at is None or now - key.last_used_at > _LAST_USED_RESOLUTION:
            ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
            key.last_used_at = now
            api_key_remember(key)
        return MerchantPrincipal(key), key


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Describes the API key scheme in the OpenAPI schema (drf-spectacular finds it by import)."""

    target_class = ApiKeyAuthentication
    name = "merchantApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A secret key of the merchant: `Authorization: Bearer sk_live_...`.",
        }
