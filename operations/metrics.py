"""What /metrics serves to Prometheus: the counts of every process (core/metrics.py: HTTP
requests, decisions, webhook attempts), added up across gunicorn's and Celery's processes in
multiprocess mode, and the platform's state read at each scrape (outbox and webhook backlogs,
Celery queues, the last ledger verification). docs/OPERATIONS.md lists every metric.

The state is read with few, indexed queries (the partial indexes of what is due), bounded like
/readyz's checks; a source that does not answer is reported as down
(`aidwallet_metrics_source_up`), the rest of the scrape still answers."""

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

from celery import current_app
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core import metrics
from ledger.models import VerifyRun
from merchants.models.webhooks import WebhookDelivery
from operations.readiness import bounded_queries, broker_channel
from wallet.models import Notification

logger = logging.getLogger(__name__)


def _overdue_seconds(due: datetime | None) -> float:
    """How late the most overdue item is (0 when none is due yet)."""
    if due is None:
        return 0.0
    return max(0.0, (timezone.now() - due).total_seconds())


def _database_families() -> list[Metric]:
    with bounded_queries():
        # Rows still to send have next_attempt_at set: the partial index notification_due_idx.
        outbox = {
            row["channel"]: row
            for row in Notification.objects.filter(next_attempt_at__isnull=False)
            .values("channel")
            .annotate(count=Count("pk"), due=Min("next_attempt_at"))
            .order_by()
        }
        # Pending deliveries: the partial index webhook_delivery_due_idx.
        webhooks = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).aggregate(
            count=Count("pk"), due=Min("next_attempt_at")
        )
        verified = VerifyRun.objects.order_by("-finished_at").first()

    backlog = GaugeMetricFamily(
        "aidwallet_outbox_backlog",
        "Messages to beneficiaries waiting to be sent (or retried), by channel.",
        labels=["channel"],
    )
    overdue = GaugeMetricFamily(
        "aidwallet_outbox_overdue_seconds",
        "How late the most overdue message of each channel is (0: none is due yet).",
        labels=["channel"],
    )
    for channel in Notification.Channel.values:
        row = outbox.get(channel, {"count": 0, "due": None})
        backlog.add_metric([channel], row["count"])
        overdue.add_metric([channel], _overdue_seconds(row["due"]))
    families: list[Metric] = [
        backlog,
        overdue,
        GaugeMetricFamily(
            "aidwallet_webhook_deliveries_pending",
            "Webhook deliveries not yet succeeded nor given up (first attempts and retries).",
            value=webhooks["count"],
        ),
        GaugeMetricFamily(
            "aidwallet_webhook_delivery_overdue_seconds",
            "How late the most overdue pending webhook delivery is (0: none is due yet).",
            value=_overdue_seconds(webhooks["due"]),
        ),
    ]
    if verified is not None:  # absent until the first run: alert on absent() too
        families += [
            GaugeMetricFamily(
                "aidwallet_ledger_verify_problems",
                "Broken ledger invariants the last `ledger verify` found (0: the ledger holds).",
                value=verified.problems,
            ),
            GaugeMetricFamily(
                "aidwallet_ledger_verify_last_run_timestamp_seconds",
                "When the last `ledger verify` finished (Unix time).",
                value=verified.finished_at.timestamp(),
            ),
            GaugeMetricFamily(
                "aidwallet_ledger_verify_age_seconds",
                "Seconds since the last `ledger verify` finished (it runs every night).",
                value=time.time() - verified.finished_at.timestamp(),
            ),
        ]
    return families


def _broker_families() -> list[Metric]:
    queues = current_app.conf.task_queues or ()
    names = [queue.name for queue in queues] or [current_app.conf.task_default_queue]
    lengths = GaugeMetricFamily(
        "aidwallet_celery_queue_length",
        "Tasks waiting in each Celery queue (Redis: LLEN of the queue's lists).",
        labels=["queue"],
    )
    with broker_channel() as channel:
        for name in names:
            # kombu answers the queue's length: on Redis, LLEN of its list (one per priority).
            lengths.add_metric([name], channel.queue_declare(queue=name).message_count)
    return [lengths]


class PlatformCollector(Collector):
    """The platform's state, read when Prometheus scrapes."""

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "aidwallet_metrics_source_up",
            "1 when this scrape could read the source (database, broker), 0 when it could not.",
            labels=["source"],
        )
        for source, read in (("database", _database_families), ("broker", _broker_families)):
            try:
                families = read()
            except Exception:
                logger.warning("metrics: the %s could not be read", source, exc_info=True)
                up.add_metric([source], 0)
            else:
                up.add_metric([source], 1)
                yield from families
        yield up


class _ThisProcess(Collector):
    """The default registry (this process's counts, its CPU and memory), outside multiprocess
    mode: a single process (runserver, the tests) answers for itself."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def multiprocess_mode() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def process_registry() -> CollectorRegistry:
    """The counts of every process of this host when PROMETHEUS_MULTIPROC_DIR is set (each
    writes its own files there; the scrape adds them up), else this process's."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_mode():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    return registry


def scrape() -> bytes:
    """The text exposition of every metric, as /metrics answers it."""
    registry = process_registry()
    registry.register(PlatformCollector())
    return generate_latest(registry)


# Any other method (a client may send anything) is counted as "other": one series per word a
# client invents would grow the metrics without bound.
_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


class RequestMetrics:
    """Counts every request and times it, by route: the URL pattern that answered
    ("/api/merchant/v1/authorizations/<str:reference>/capture"), never the path, which would
    make one series per payment. Requests no pattern matched are "unmatched"."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = request.resolver_match
        route = f"/{match.route}" if match is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        metrics.HTTP_REQUESTS.labels(method, route, str(response.status_code)).inc()
        metrics.HTTP_REQUEST_DURATION.labels(method, route).observe(elapsed)
        return response
