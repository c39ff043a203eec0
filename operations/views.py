"""The load balancer's probes. Public, like the pages they guard: they say only what answers,
never a host, a secret or a version."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

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
