"""The readable page of an API's OpenAPI schema, for the merchant API and the app API alike."""

from typing import Any

from csp.constants import SELF
from csp.decorators import csp_update
from django.http.response import HttpResponseBase
from django.utils import translation
from django.utils.decorators import method_decorator
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView
from rest_framework.request import Request

# What Redoc needs beyond the site's policy. Its bundle writes two style sheets before its
# `nonce` option is read, as it loads: perfect-scrollbar's (the sidebar's scroll bars) and an
# empty one; each is allowed by its SHA-256 alone, so a change of either in a new
# drf-spectacular-sidecar shows as a refusal in tests/browser/test_api_docs.py, with the new
# hash in the browser's message. Its search runs in a worker made from a blob: URL.
REDOC_POLICY = {
    "style-src": [
        "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",
        "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",
    ],
    "worker-src": [SELF, "blob:"],
}


@method_decorator(csp_update(REDOC_POLICY), name="get")
class ApiDocsView(SpectacularRedocView):
    """Redoc, served by us (drf-spectacular-sidecar) and started by a script of ours: the page of
    drf-spectacular runs an inline script, has an inline style sheet and loads web fonts from
    Google, none of which the Content-Security-Policy allows."""

    template_name = "core/api_docs.html"


class ApiSchemaView(SpectacularAPIView):
    """The OpenAPI document in one language whoever fetches it: English, the language its
    descriptions are written in, unless `?lang=` asks for another. Without this, the enum
    labels and help texts would follow each reader's Accept-Language, and two integrators
    would diff two different schemas."""

    @extend_schema(exclude=True)  # as drf-spectacular's own view, with SERVE_INCLUDE_SCHEMA off
    def get(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        with translation.override(request.GET.get("lang") or "en"):
            # drf-spectacular's views are not typed.
            response: HttpResponseBase = super().get(  # type: ignore[no-untyped-call]
                request, *args, **kwargs
            )
        return response
