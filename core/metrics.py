"""The platform's Prometheus instruments, counted in the process that does the work: the web
processes (HTTP requests, decisions) and the Celery workers (webhook attempts). Here, on the
lowest floor, so that any floor can count without importing the one that serves /metrics
(operations/metrics.py, which adds the figures read from the database at each scrape).

Under gunicorn's or Celery's several processes, each writes its counts to files in
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode, chosen by that variable when
prometheus_client is first imported) and the scrape adds them up. docs/OPERATIONS.md lists every
metric and what it means."""

from prometheus_client import Counter, Histogram

# Decisions take milliseconds; the top buckets catch a lock wait or a slow disk.
_DECISION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# A webhook leaves within seconds of its payment, or after its retries: up to about 31 hours.
_WEBHOOK_LAG_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 6 * 3600, 24 * 3600, 48 * 3600)

HTTP_REQUESTS = Counter(
    "aidwallet_http_requests",
    "HTTP requests answered, by method, route (the URL pattern, not the path) and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "aidwallet_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route.",
    ["method", "route"],
)
AUTHORIZATIONS = Counter(
    "aidwallet_authorizations",
    "Payment decisions recorded (committed; never a replay), by channel, live or sandbox, "
    "outcome and decline reason (empty when approved).",
    ["channel", "livemode", "outcome", "reason"],
)
DECISION_DURATION = Histogram(
    "aidwallet_decision_duration_seconds",
    "Time the engine took to decide a payment and place its holds (the decision's "
    "duration_us), by channel.",
    ["channel"],
    buckets=_DECISION_BUCKETS,
)
WEBHOOK_ATTEMPTS = Counter(
    "aidwallet_webhook_attempts",
    "Webhook POSTs to merchants' endpoints, by result: succeeded (2xx), failed (any other "
    "answer, or none).",
    ["result"],
)
WEBHOOK_DELIVERIES_FAILED = Counter(
    "aidwallet_webhook_deliveries_failed",
    "Webhook deliveries given up: their last attempt failed.",
)
WEBHOOK_DELIVERY_LAG = Histogram(
    "aidwallet_webhook_delivery_lag_seconds",
    "From a webhook event's creation to its delivery's success, retries included.",
    buckets=_WEBHOOK_LAG_BUCKETS,
)
DECISION_NOTICES_FAILED = Counter(
    "aidwallet_decision_notices_failed",
    "Payments' messages given up: their notice's last attempt to write them failed (kept for "
    "the operators, who can have it tried again).",
)
