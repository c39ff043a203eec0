"""The load balancer's probes, public like the pages they guard: they say only what answers,
never a host, a secret or a version. And the metrics, which are not public."""

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from operations.metrics import scrape
from operations.readiness import readiness


@require_safe
@never_cache
def healthz(request: HttpRequest) -> HttpResponse:
    """The process answers. Nothing else is touched, so that a database outage takes servers
    out of rotation (/readyz) without having them restarted."""
    return HttpResponse("ok", content_type="text/plain; charset=utf-8")


@require_safe
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when every check passes, else 503 naming the failing ones."""
    checks = readiness()
    failing = [name for name, result in checks.items() if result["status"] != "ok"]
    return JsonResponse(
        {"status": "fail" if failing else "ok", "failing": failing, "checks": checks},
        status=503 if failing else 200,
    )


def _bearer_token(request: HttpRequest) -> str | None:
    scheme, _space, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def _staff_may_read(request: HttpRequest) -> bool:
    user = request.user
    # A staff session counts once its second factor is given, as for the admin.
    return (
        user.is_authenticated
        and user.is_staff
        and user.is_verified()
        and user.has_perm("operations.view_metrics")
    )


@require_safe
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus' text format, for a scraper sending METRICS_TOKEN as a bearer token or for
    staff allowed to read them. A wrong token is told so (401); anyone else is answered as if
    there were nothing here (404): the metrics say how much money moves and where it fails."""
    expected = settings.METRICS_TOKEN
    token = _bearer_token(request)
    if expected and token is not None:
        if not hmac.compare_digest(token.encode(), expected.encode()):
            response = JsonResponse(
                {
                    "error": {
                        "code": "metrics_token_invalid",
                        "message": _("This metrics token is not the platform's."),
                        "field": None,
                    }
                },
                status=401,
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif not _staff_may_read(request):
        raise Http404
    return HttpResponse(scrape(), content_type=CONTENT_TYPE_LATEST)
