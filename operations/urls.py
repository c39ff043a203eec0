from django.urls import path

from operations.views import healthz, metrics, readyz

# At the root, without a trailing slash, as load balancers and orchestrators expect them; the
# same paths are exempt from the SSL redirect (SECURE_REDIRECT_EXEMPT in config/settings.py).
urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    # Where Prometheus looks by default; protected (operations/views.py).
    path("metrics", metrics, name="metrics"),
]
