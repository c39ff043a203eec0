"""A payment's notice whose message fails is tried again later and later, then failed for good:
kept with its error, logged once as an error, shown to the operators, who can have it tried
again. It never holds back the notices of other payments, and two drains at once try it once."""

import logging
from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from merchants.payments import payment_authorize
from notifications import services
from notifications.services import NOTICE_MAX_ATTEMPTS, decision_notices_drain, notice_retry_delay
from tests.concurrency import run_together
from tests.factories import BeneficiaryFactory, make_allocation, make_payment_code, make_program
from tests.markers import ON_POSTGRESQL, postgresql_only
from wallet.models import Card, DecisionNotice
from wallet.models.notifications import Notification

pytestmark = pytest.mark.django_db

APPROVED = Notification.Kind.PAYMENT_APPROVED


@pytest.fixture
def card(funder):
    person = BeneficiaryFactory(email="camille@example.org")
    program = make_program(funder=funder, rules={})
    make_allocation(program=program, beneficiary=person, amount=50_000)
    return Card.objects.create(wallet=person.wallet, kind="virtual", status="active")


@pytest.fixture
def pay(card, merchant):
    def pay(amount=100):
        return payment_authorize(
            merchant=merchant,
            amount=amount,
            currency="EUR",
            payment_code=make_payment_code(card.wallet),
        )

    return pay


@pytest.fixture
def poison(monkeypatch):
    """poison(decision): its message fails whenever it is written; returns the list of the
    decisions whose message was tried, in order."""
    poisoned: set[int] = set()
    tried: list[int] = []
    tell = services.decision_notify

    def decision_notify(*, decision):
        tried.append(decision.pk)
        if decision.pk in poisoned:
            raise RuntimeError(f"template missing, for camille@example.org ({decision.pk})")
        return tell(decision=decision)

    monkeypatch.setattr(services, "decision_notify", decision_notify)

    def add(decision):
        poisoned.add(decision.pk)
        return tried

    add.tried = tried
    add.cure = poisoned.clear
    return add


def ahead():
    """A start for time_machine's clock a second ahead of the database's, which stamps a new
    notice due (its default): travelling to now leaves the clock some milliseconds behind."""
    return timezone.now() + timedelta(seconds=1)


def told(decision) -> bool:
    return Notification.objects.filter(
        kind=APPROVED, dedupe_key__contains=f":{decision.pk}:"
    ).exists()


def test_the_wait_doubles_from_ten_seconds_up_to_half_an_hour():
    waits = [notice_retry_delay(n) for n in range(1, NOTICE_MAX_ATTEMPTS)]

    assert waits[:4] == [timedelta(seconds=s) for s in (10, 20, 40, 80)]
    assert waits[-2:] == [timedelta(seconds=1280), timedelta(minutes=30)]
    assert notice_retry_delay(40) == timedelta(minutes=30)


def test_a_failing_notice_is_tried_again_only_when_its_wait_is_over(pay, poison, time_machine):
    time_machine.move_to(ahead())
    decision = pay()
    tried = poison(decision)

    assert decision_notices_drain() == 0
    notice = DecisionNotice.objects.get()
    assert (notice.attempts, notice.failed_at) == (1, None)
    # The error as the admin shows it: the address in it masked, as a notification's.
    assert notice.error.startswith("RuntimeError: template missing, for c")
    assert "camille@example.org" not in notice.error
    assert notice.next_attempt_at - timezone.now() == pytest.approx(
        timedelta(seconds=10), abs=timedelta(seconds=2)
    )

    time_machine.shift(timedelta(seconds=5))
    assert decision_notices_drain() == 0
    assert tried == [decision.pk]  # not due yet: not tried

    time_machine.shift(timedelta(seconds=6))
    assert decision_notices_drain() == 0
    assert tried == [decision.pk] * 2
    notice.refresh_from_db()
    assert notice.attempts == 2
    assert notice.next_attempt_at - timezone.now() == pytest.approx(
        timedelta(seconds=20), abs=timedelta(seconds=2)
    )

    poison.cure()
    time_machine.shift(timedelta(seconds=21))
    assert decision_notices_drain() == 1
    assert told(decision)
    assert not DecisionNotice.objects.exists()


def test_after_its_last_attempt_a_notice_is_failed_kept_and_logged_once_as_an_error(
    pay, poison, time_machine, caplog
):
    time_machine.move_to(ahead())
    decision = pay()
    tried = poison(decision)

    with caplog.at_level(logging.WARNING, logger="notifications.services"):
        for _ in range(NOTICE_MAX_ATTEMPTS + 3):
            decision_notices_drain()
            time_machine.shift(timedelta(hours=1))

    assert len(tried) == NOTICE_MAX_ATTEMPTS
    notice = DecisionNotice.objects.get()
    assert notice.attempts == NOTICE_MAX_ATTEMPTS
    assert notice.next_attempt_at is None and notice.failed_at is not None
    assert "RuntimeError" in notice.error
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert f"decision {decision.pk}" in errors[0].getMessage() and errors[0].exc_info
    assert (
        len([r for r in caplog.records if r.levelno == logging.WARNING]) == NOTICE_MAX_ATTEMPTS - 1
    )


def test_a_new_notice_is_due_at_once_when_the_application_clock_is_behind_the_database(
    pay, time_machine
):
    # The database stamps the new notice a minute ahead of the clock the drain reads.
    time_machine.move_to(timezone.now() - timedelta(minutes=1))
    decision = pay()
    assert DecisionNotice.objects.get().next_attempt_at > timezone.now()

    assert decision_notices_drain() == 1
    assert told(decision)


def test_a_notice_failed_for_good_is_counted_at_the_metrics_endpoint(
    client, settings, pay, poison, time_machine
):
    settings.METRICS_TOKEN = "a-long-random-metrics-token"
    time_machine.move_to(ahead())
    poison(pay())

    def failed() -> float:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {settings.METRICS_TOKEN}")
        assert response.status_code == 200
        return sum(
            sample.value
            for family in text_string_to_metric_families(response.content.decode())
            for sample in family.samples
            if sample.name == "aidwallet_decision_notices_failed_total"
        )

    before = failed()
    for _ in range(NOTICE_MAX_ATTEMPTS - 1):
        decision_notices_drain()
        time_machine.shift(timedelta(hours=1))
    assert failed() == before  # still tried again: not given up
    decision_notices_drain()
    assert failed() == before + 1


def test_a_good_notice_is_not_held_back_by_failing_ones(pay, poison):
    # More failing notices than a batch, all older than the good ones.
    broken = [pay(100 + i) for i in range(3)]
    for decision in broken:
        tried = poison(decision)
    good = [pay(200 + i) for i in range(2)]

    assert decision_notices_drain(batch_size=2) == 2
    assert all(told(decision) for decision in good)

    later = pay(300)
    tried.clear()
    assert decision_notices_drain(batch_size=2) == 1
    assert told(later)
    assert tried == [later.pk]  # the failing ones wait their turn
    assert DecisionNotice.objects.count() == 3


@pytest.mark.skipif(not ON_POSTGRESQL, reason="the plan is PostgreSQL's (set DATABASE_URL)")
def test_the_drain_reads_the_due_notices_by_their_partial_index(pay):
    pay()
    with CaptureQueriesContext(connection) as sent:
        decision_notices_drain()
    (select,) = [q["sql"] for q in sent.captured_queries if "SKIP LOCKED" in q["sql"]]

    with connection.cursor() as cursor:
        # The tables are tiny here, where any plan is cheap: with scans of whole tables, bitmaps
        # and sorts priced out, the plan shows that the index answers the drain's filter and
        # its order, as the planner chooses it to on a large table (LIMIT 100 of many).
        for kind in ("seqscan", "bitmapscan", "sort"):
            cursor.execute(f"SET LOCAL enable_{kind} = off")
        cursor.execute(f"EXPLAIN {select}")
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "Index Scan using decision_notice_due_idx on wallet_decisionnotice" in plan, plan
    assert "Sort" not in plan and "Seq Scan" not in plan, plan


def test_an_operator_sees_the_failed_notice_and_has_it_tried_again(
    client, operator, agent, pay, poison, time_machine
):
    time_machine.move_to(ahead())
    decision = pay()
    poison(decision)
    for _ in range(NOTICE_MAX_ATTEMPTS):
        decision_notices_drain()
        time_machine.shift(timedelta(hours=1))
    page = reverse("admin:wallet_decisionnotice_changelist")

    client.force_login(agent)  # a funder's staff: the platform's work is not theirs
    assert client.get(page).status_code == 403
    client.force_login(operator)
    listed = client.get(page, {"state": "failed"})
    assert listed.status_code == 200
    assert list(listed.context["cl"].result_list) == [DecisionNotice.objects.get()]
    assert not client.get(page, {"state": "pending"}).context["cl"].result_list

    poison.cure()
    sent = client.post(page, {"action": "retry", ACTION_CHECKBOX_NAME: [decision.pk]}, follow=True)
    assert "1 message de paiement sera écrit de nouveau." in sent.content.decode()  # in French
    assert decision_notices_drain() == 1
    assert told(decision)
    assert not DecisionNotice.objects.exists()


@postgresql_only
@pytest.mark.django_db(transaction=True)
def test_two_drains_at_once_try_a_failing_notice_once_and_tell_the_others_once(pay, poison):
    decisions = [pay(100 + i) for i in range(12)]
    tried = poison(decisions[4])

    outcomes = run_together([lambda: decision_notices_drain(batch_size=3, max_batches=10)] * 2)

    assert all(isinstance(n, int) for n in outcomes), outcomes
    assert sum(outcomes) == len(decisions) - 1
    assert sorted(tried) == sorted(d.pk for d in decisions)  # each once, the failing one too
    assert DecisionNotice.objects.get().attempts == 1
    assert all(told(d) for d in decisions if d != decisions[4])
