"""What makes the till an installable web app beside its manifest (shop/static/shop/
manifest.json): its service worker, which keeps the till's files (its shell) for a start without
a network, and the page it shows when there is none. The worker never keeps a page of the till:
payments, their answers and the day's figures always come from the server."""

import json

from django.shortcuts import render
from django.templatetags.static import static
from django.urls import reverse
from django.views.decorators.http import require_safe
from django.views.decorators.vary import vary_on_cookie

from core.static_assets import static_digest

# The shell: what the till's pages load, kept by the service worker.
ASSETS = (
    "shop/till.css",
    "shop/till.js",
    "shop/vendor/jsqr/jsQR.js",
    "shop/manifest.json",
    "shop/icon.svg",
    "shop/icon-192.png",
    "shop/icon-512.png",
    "shop/icon-maskable-512.png",
)


@require_safe
@vary_on_cookie  # the language cookie: the offline page it keeps is in the cashier's language
def service_worker(request):
    scope = reverse("shop:home")
    response = render(
        request,
        "shop/sw.js",
        {
            "cache_name": json.dumps(f"aidwallet-till-{static_digest(ASSETS)}"),
            "offline_url": json.dumps(reverse("shop:offline")),
            "asset_urls": json.dumps([static(name) for name in ASSETS]),
        },
        content_type="text/javascript; charset=utf-8",
    )
    # Served from /shop/ already; said plainly, so that the worker's scope stays the till's.
    response["Service-Worker-Allowed"] = scope
    # The browser checks for a new worker at each visit; no cache may keep an old one.
    response["Cache-Control"] = "no-cache"
    return response


@require_safe
def offline(request):
    """The page the service worker shows when the network is gone: no member, no figure, nothing
    of a shop in it (it is kept on the phone)."""
    return render(request, "shop/offline.html")
