"""Every view the merchant API's key authenticates is a MerchantApi: the authentication asks
the view for the counts its operation reads (`counts_to_read`) without checking it has them."""

from django.urls import URLPattern, URLResolver, get_resolver

from merchant_api.authentication import ApiKeyAuthentication
from merchant_api.base import MerchantApi


def views(patterns):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from views(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            # DRF's as_view() keeps its class on the function (a view set's too); Django's
            # view_class; a plain function view has neither and authenticates no API key.
            callback = pattern.callback
            view = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
            if view is not None:
                yield str(pattern.pattern), view


def test_every_view_authenticated_by_an_api_key_is_a_merchant_api():
    keyed = {
        route: view
        for route, view in views(get_resolver().url_patterns)
        if any(
            issubclass(authentication, ApiKeyAuthentication)
            for authentication in getattr(view, "authentication_classes", ())
        )
    }
    # The walk finds them: the merchant API's resources (authorizations, captures, refunds,
    # settlements, API keys, webhook endpoints...).
    assert len(keyed) >= 10
    assert {route: view for route, view in keyed.items() if not issubclass(view, MerchantApi)} == {}
