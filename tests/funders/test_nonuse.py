"""Non-use: the daily detection at its edges, one outreach per episode by the person's
preferences and to their aidant, the agents' worklist, and the dashboard's figures."""

from datetime import date, datetime, timedelta

import pytest
import time_machine
from django.utils import timezone

from core.time import PARIS
from engine.request import AuthorizationRequest
from funders.models import BeneficiaryProfile, Enrolment, NonUseCall, NonUseEpisode
from funders.nonuse import nonuse_call_record, nonuse_detect, nonuse_figures
from merchants.payments import merchant_place
from tests.factories import BeneficiaryFactory, make_allocation, make_merchant, make_program
from tests.funders.conftest import client_for
from wallet.authorize import authorize
from wallet.models import Aidant, Decision
from wallet.models.notifications import Notification, NotificationPreference

pytestmark = pytest.mark.django_db

START = datetime(2026, 10, 1, 10, tzinfo=PARIS)
IDLE = NonUseEpisode.Kind.IDLE
EXPIRING = NonUseEpisode.Kind.EXPIRING


def at(moment):
    return time_machine.travel(moment, tick=False)


def pay(person, amount, when):
    merchant = make_merchant()
    with at(when):
        return authorize(
            request=AuthorizationRequest(
                amount=amount,
                currency="EUR",
                merchant=merchant_place(merchant),
                at=when,
                channel="api",
            ),
            wallet=person.wallet,
            credit_account=merchant.payable_account,
            merchant_id=merchant.pk,
            idempotency_key=f"nonuse-{Decision.objects.count()}",
        )


def detect(when):
    with at(when):
        return nonuse_detect(now=when)


@pytest.fixture
def program(funder):
    program = make_program(funder=funder)
    program.nonuse_idle_days = 14
    program.save()
    return program


@pytest.fixture
def person(program, funder):
    person = BeneficiaryFactory(phone="+33612345678", postcode="38000")
    make_allocation(program=program, beneficiary=person, amount=10_000, valid_from=START, days=90)
    Enrolment.objects.update_or_create(
        funder=funder, beneficiary=person, defaults={"reference": "DOS-7"}
    )
    return person


def test_no_payment_for_n_days_opens_one_episode_at_the_edge(program, person):
    edge = START + timedelta(days=14)
    assert detect(edge - timedelta(seconds=1)) == 0
    assert detect(edge) == 1
    [episode] = NonUseEpisode.objects.all()
    assert (episode.kind, episode.beneficiary, episode.unspent) == (IDLE, person, 10_000)
    sent = Notification.objects.filter(kind=Notification.Kind.NON_USE)
    assert sorted(sent.values_list("channel", flat=True)) == ["email", "sms"]
    # Once per episode: the next days send nothing more.
    assert detect(edge + timedelta(days=1)) == 0
    assert detect(edge + timedelta(days=2)) == 0
    assert Notification.objects.filter(kind=Notification.Kind.NON_USE).count() == 2


def test_a_payment_ends_the_episode_and_a_new_stretch_is_a_new_one(program, person):
    detect(START + timedelta(days=14))
    paid = START + timedelta(days=20)
    pay(person, 1_000, paid)
    detect(paid + timedelta(days=1))
    [first] = NonUseEpisode.objects.all()
    assert first.closed_at is not None
    assert detect(paid + timedelta(days=14) - timedelta(seconds=1)) == 0
    assert detect(paid + timedelta(days=14)) == 1
    assert NonUseEpisode.objects.filter(closed_at__isnull=True).count() == 1
    assert Notification.objects.filter(kind=Notification.Kind.NON_USE).count() == 4


def test_aid_ending_with_more_than_p_percent_unspent(program, person):
    program.nonuse_idle_days = None
    program.nonuse_expiry_days = 10
    program.nonuse_unspent_percent = 50
    program.save()
    ends = START + timedelta(days=90)
    # Exactly half spent: not more than 50 % unspent.
    pay(person, 5_000, START + timedelta(days=1))
    assert detect(ends - timedelta(days=10)) == 0
    other = BeneficiaryFactory()
    make_allocation(program=program, beneficiary=other, amount=10_000, valid_from=START, days=90)
    pay(other, 4_999, START + timedelta(days=1))
    assert detect(ends - timedelta(days=10) - timedelta(seconds=1)) == 0
    assert detect(ends - timedelta(days=10)) == 1
    [episode] = NonUseEpisode.objects.all()
    assert (episode.kind, episode.beneficiary) == (EXPIRING, other)


def test_the_message_follows_preferences_and_the_aidant_is_told(program, person):
    NotificationPreference.objects.create(
        beneficiary=person, kind=Notification.Kind.NON_USE, channel="sms", enabled=False
    )
    Aidant.objects.create(
        wallet=person.wallet, name="CCAS", contact="aidant@example.org", channel="email"
    )
    detect(START + timedelta(days=14))
    sms = Notification.objects.get(kind=Notification.Kind.NON_USE, channel="sms")
    assert (sms.status, sms.skip_reason) == ("skipped", "opted_out")
    email = Notification.objects.get(kind=Notification.Kind.NON_USE, channel="email")
    assert email.status == "queued"
    told = Notification.objects.get(kind=Notification.Kind.NON_USE_AIDANT)
    assert told.recipient == "aidant@example.org"
    assert person.first_name in told.body
    assert NonUseEpisode.objects.get().aidant_told


def test_the_message_names_shops_nearby(program, person):
    make_merchant(trade_name="Épicerie de la Bastille", postcode="38000")
    detect(START + timedelta(days=14))
    email = Notification.objects.get(kind=Notification.Kind.NON_USE, channel="email")
    assert "Épicerie de la Bastille" in email.body


def test_agents_work_the_list_with_history(program, person, agent, other_funder):
    from tests.factories import make_staff

    detect(START + timedelta(days=14))
    episode = NonUseEpisode.objects.get()
    client = client_for(agent)
    listing = client.get("/admin/funders/nonuseepisode/")
    assert listing.status_code == 200
    page = listing.content.decode()
    assert "06 12 34 56 78" in page and "DOS-7" in page
    url = f"/admin/funders/nonuseepisode/{episode.pk}/change/"
    form = {
        "calls-TOTAL_FORMS": "1",
        "calls-INITIAL_FORMS": "0",
        "calls-0-outcome": "no_answer",
        "calls-0-note": "Messagerie",
    }
    assert client.post(url, form).status_code == 302
    episode.refresh_from_db()
    assert episode.status == NonUseEpisode.Status.TO_CALL
    form.update({"calls-TOTAL_FORMS": "2", "calls-INITIAL_FORMS": "1"})
    form.update({"calls-0-id": str(episode.calls.get().pk)})
    form.update({"calls-1-outcome": "reached", "calls-1-note": "Ira au marché"})
    assert client.post(url, form).status_code == 302
    episode.refresh_from_db()
    assert episode.status == NonUseEpisode.Status.DONE
    assert list(episode.calls.values_list("outcome", "created_by")) == [
        ("no_answer", agent.pk),
        ("reached", agent.pk),
    ]
    # Another funder's staff never reach it.
    outsider = client_for(make_staff(funder=other_funder, role="agent"))
    assert outsider.get(url).status_code == 404
    assert "DOS-7" not in outsider.get("/admin/funders/nonuseepisode/").content.decode()


def test_the_dashboard_figures(program, person, funder):
    BeneficiaryProfile.objects.create(
        enrolment=Enrolment.objects.get(beneficiary=person),
        commune="38185",
        birth_date=date(1990, 6, 1),
    )
    idle = BeneficiaryFactory()
    make_allocation(program=program, beneficiary=idle, amount=5_000, valid_from=START, days=90)
    detect(START + timedelta(days=14))  # both reached out to
    pay(person, 2_500, START + timedelta(days=15))  # after the outreach
    [line] = nonuse_figures(program=program, by="program", today=date(2026, 11, 1))
    assert (line.granted, line.spent, line.reached_out, line.spent_after) == (2, 1, 2, 1)
    assert (line.amount, line.unspent, line.share_unspent) == (15_000, 12_500, 83)
    by_commune = nonuse_figures(program=program, by="commune")
    assert [(line.label, line.granted, line.spent) for line in by_commune] == [
        ("38185", 1, 1),
        ("?", 1, 0),
    ]
    by_age = nonuse_figures(program=program, by="age", today=date(2026, 11, 1))
    assert [(line.label, line.granted) for line in by_age] == [("25-39", 1), ("?", 1)]


def test_a_settled_call_takes_the_person_off_the_list(program, person, agent):
    detect(START + timedelta(days=14))
    episode = NonUseEpisode.objects.get()
    nonuse_call_record(episode=episode, outcome="needs_help", note="", by=agent)
    assert NonUseEpisode.objects.get().status == "to_call"
    nonuse_call_record(episode=episode, outcome="not_needed", note="", by=agent)
    assert NonUseEpisode.objects.get().status == "done"
    assert NonUseCall.objects.count() == 2
    assert timezone.now()  # the calls keep their own time


def test_the_program_dashboard_shows_non_use(program, person, manager):
    detect(START + timedelta(days=14))
    page = client_for(manager).get(f"/admin/funders/programdashboard/{program.pk}/change/")
    assert page.status_code == 200
    [by_program, _by_commune, _by_age] = page.context["nonuse"]
    assert by_program["lines"] == [(program.name, 1, 0, "100 %", 1, 0)]


def test_an_agent_registers_an_aidant_with_the_persons_consent(person, agent, other_manager):
    url = f"/admin/wallet/beneficiary/{person.pk}/aidant/"
    client = client_for(agent)
    assert client.get(url).status_code == 200
    # Without the consent ticked, nothing is recorded.
    refused = client.post(url, {"name": "CCAS", "contact": "06 11 22 33 44", "consent": "oral"})
    assert refused.status_code == 200
    assert not Aidant.objects.exists()
    done = client.post(
        url,
        {
            "name": "CCAS Grenoble",
            "contact": "06 11 22 33 44",
            "consent": "En personne à l'accueil, le 3 décembre",
            "consent_given": "on",
        },
    )
    assert done.status_code == 302
    aidant = Aidant.objects.get()
    assert (aidant.contact, aidant.channel, aidant.registered_by) == ("+33611223344", "sms", agent)
    assert aidant.consent.startswith("En personne")
    assert client_for(other_manager).get(url).status_code == 404
