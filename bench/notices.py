"""Benchmark: the tasks that carry a campaign's grant messages and the expiry reminders to the
providers, and a Celery worker's processor per message.

N people with an email and a mobile number (each event is told on both) are made eligible for
a campaign and their N proposals accepted in bulk, as an agent does (proposal_accept_many:
each grant in a transaction of its own, each telling its person); then they are reminded that
the aid ends in 7 days (expiry_reminders_notify, the hourly task's service, its hours of the day
opened for the run). One Celery worker (one pool process, started and left idle first) sends
the messages to a local fake of Brevo's API (tests/notifications/brevo_fake.py: plain HTTP kept
alive, answered from a thread of this process), email through django-anymail's Brevo backend,
SMS through notifications.brevo. For each of the two writers it prints the tasks the writer
published (counted by Celery's before_task_publish signal), the writer's processor per message
(its own thread's), and the worker's processor from before the writer starts to the last
message sent, per message, with its idle rate measured just before.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aidwallet_bench_notices \\
        .venv/bin/python -m bench.notices [--people 200] [--limit-seconds 5]

The database named in DATABASE_URL is dropped and created again: never point it at real data;
the Redis databases of --cache-url and --broker-url are emptied first. With --limit-seconds, the
bare-SQL limit of one authorization is measured in the same run, to say how loaded the machine
was: a message has no pgbench counterpart, so the figures to compare are tasks and processor,
before and after a change, runs back to back.
"""

import argparse
import os
import sys
import time

from bench import harness

# A worker idle costs less processor a second than this (seconds): it is done starting.
IDLE_RATE = 0.02


def build(people: int):
    """A funded program, a campaign whose one criterion everyone meets, and `people` enrolled
    people with an email and a mobile number. Returns the campaign."""
    from funders.campaigns import campaign_create
    from funders.models import EligibilityCriterion, Enrolment
    from tests.factories import BeneficiaryFactory, FunderFactory, make_program, siret
    from wallet.models import Wallet

    funder = FunderFactory(name="Bench", siret=siret(1))
    program = make_program(funder=funder, name="Chèque énergie", funded=10**10)
    for number in range(people):
        person = BeneficiaryFactory(
            email=f"person{number}@example.org", phone=f"+3361{number:07d}", postcode="38000"
        )
        Wallet.objects.get_or_create(beneficiary=person)
        Enrolment.objects.create(funder=funder, beneficiary=person, reference=f"B{number:07d}")
    criterion = EligibilityCriterion(program=program, kind="departement", values=["38"])
    criterion.full_clean()
    criterion.save()
    # Eight days: the grants end within the reminders' window (7 to 8 days from now).
    return campaign_create(program=program, name="Hiver", amount=5_000, validity_days=8)


def settled(pid: int) -> float:
    """Wait until the worker of process group `pid` is done starting (a second of it costs
    under IDLE_RATE of processor, at most a minute); returns its last second's processor."""
    deadline = time.monotonic() + 60
    last = harness.process_group_cpu(pid)
    while True:
        time.sleep(1)
        now = harness.process_group_cpu(pid)
        if now - last < IDLE_RATE or time.monotonic() > deadline:
            return now - last
        last = now


def measured(bench: harness.Bench, label: str, writer, kind: str, timeout: float) -> bool:
    """Run `writer` with one worker started and idle, and print the figures of its messages of
    `kind`. Whether every message was sent."""
    from celery.signals import before_task_publish

    from wallet.models.notifications import Notification

    published: list[str] = []

    def count(sender=None, **kwargs):
        published.append(sender)

    worker = bench.start_celery(concurrency=1)
    try:
        idle_rate = settled(worker.pid)
        start = harness.process_group_cpu(worker.pid)

        before_task_publish.connect(count, weak=False)
        started = time.monotonic()
        writer_cpu = time.thread_time()
        writer()
        writer_cpu = time.thread_time() - writer_cpu
        before_task_publish.disconnect(count)
        messages = Notification.objects.filter(kind=kind)
        waiting = messages.filter(status=Notification.Status.QUEUED)
        while waiting.exists() and time.monotonic() - started < timeout:
            time.sleep(0.05)
        wall = time.monotonic() - started
        worker_cpu = harness.process_group_cpu(worker.pid) - start
    finally:
        bench.stop(worker)
    total = messages.count()
    left = waiting.count()
    sent = messages.filter(status=Notification.Status.SENT).count()
    with_id = messages.exclude(provider_message_id="").count()
    tasks = {name: published.count(name) for name in sorted(set(published))}
    print("load average: " + " ".join(f"{load:.2f}" for load in os.getloadavg()))
    print(f"{label}: {total} messages, {sent} sent ({with_id} with the provider's id), {left} left")
    print(f"  tasks published: {len(published)} {tasks}")
    print(f"  writer: {harness.ms(writer_cpu / max(total, 1))} of processor per message")
    print(
        f"  worker: {harness.ms(worker_cpu / max(total, 1))} of processor per message "
        f"({worker_cpu:.2f} s in all; idle {idle_rate * 1000:.1f} ms/s), "
        f"{wall:.1f} s from the writer's start to the last message sent"
    )
    return left == 0 and sent == total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=300.0)
    harness.add_redis_arguments(parser)
    harness.add_limit_arguments(parser, seconds=0.0)
    args = parser.parse_args()
    redis = harness.Redis(cache_url=args.cache_url, broker_url=args.broker_url)

    sys.path.insert(0, str(harness.ROOT))
    from tests.notifications.brevo_fake import API_KEY, BrevoFake, serve

    fake = BrevoFake()
    server = serve(fake)
    settings = {
        "EMAIL_BACKEND": "anymail.backends.brevo.EmailBackend",
        "SMS_BACKEND": "notifications.brevo.BrevoSMSBackend",
        "BREVO_API_KEY": API_KEY,
        "BREVO_API_URL": fake.url,
        "LOG_LEVEL": "WARNING",
    }
    try:
        with harness.Bench(
            "notices", redis=redis, limit_seconds=args.limit_seconds, settings=settings
        ) as bench:
            return run(bench, args)
    finally:
        server.shutdown()
        server.server_close()


def run(bench: harness.Bench, args: argparse.Namespace) -> int:
    bench.setup()
    from funders.campaigns import campaign_run, proposal_accept_many
    from funders.models import CampaignRun, Proposal
    from notifications import services
    from wallet.models.notifications import Notification

    campaign = build(args.people)
    campaign_run(campaign=campaign, trigger=CampaignRun.Trigger.ON_DEMAND)
    proposals = list(Proposal.objects.filter(campaign=campaign, status=Proposal.Status.PENDING))
    print(f"{args.people} people with an email and a mobile number, {len(proposals)} proposals")
    if bench.limit_seconds > 0:
        print(f"limit of this run: {bench.measure_limit(clients=1)}")

    ok = measured(
        bench,
        "campaign grants (proposal_accept_many)",
        lambda: proposal_accept_many(proposals=proposals, by=None),
        Notification.Kind.ALLOCATION_GRANTED,
        args.timeout,
    )
    # The hourly task does nothing at night; the run's hour is whatever it is.
    services.REMINDER_HOURS = range(24)
    ok &= measured(
        bench,
        "expiry reminders (expiry_reminders_notify)",
        services.expiry_reminders_notify,
        Notification.Kind.EXPIRY_REMINDER,
        args.timeout,
    )
    print("load average: " + " ".join(f"{load:.2f}" for load in os.getloadavg()))
    return 0 if ok and bench.verify_ledger() else 1


if __name__ == "__main__":
    sys.exit(main())
