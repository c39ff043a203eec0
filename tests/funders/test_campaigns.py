"""Campaigns: who gets a proposal, when a proposal is withdrawn, and what an agent's decision
does (funders/campaigns.py)."""

import threading
from datetime import date, timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from core.errors import InsufficientFunds
from funders import eligibility, tasks
from funders.campaigns import (
    CampaignWithoutCriteria,
    DecisionReasonMissing,
    ProposalNotPending,
    campaign_create,
    campaign_run,
    campaigns_due,
    profile_save,
    proposal_accept,
    proposal_accept_many,
    proposal_reject,
)
from funders.models import (
    Allocation,
    BeneficiaryProfile,
    Campaign,
    CampaignRun,
    EligibilityCriterion,
    Proposal,
)
from funders.services import allocation_revoke, beneficiary_enrol
from gdpr.services import beneficiary_erase
from ledger.models import Account
from tests.factories import BeneficiaryFactory, make_allocation, make_program
from tests.funders.conftest import client_for
from wallet.models.notifications import Notification

Trigger = CampaignRun.Trigger
Status = Proposal.Status
TODAY = date(2026, 11, 23)


@pytest.fixture
def program(funder):
    program = make_program(funder=funder, funded=100_000)
    EligibilityCriterion.objects.create(program=program, kind="age", minimum=65)
    EligibilityCriterion.objects.create(program=program, kind="departement", values=["38"])
    return program


@pytest.fixture
def campaign(program):
    return campaign_create(program=program, name="Aide seniors Isère", amount=5_000)


def person(funder, *, born=date(1950, 1, 1), postcode="38000", **facts):
    beneficiary = BeneficiaryFactory()
    enrolment = beneficiary_enrol(funder=funder, beneficiary=beneficiary)
    profile_save(
        enrolment=enrolment,
        data={"birth_date": born, "postcode": postcode, **facts},
        reevaluate=False,
    )
    return beneficiary


def run(campaign, **kwargs):
    return campaign_run(campaign=campaign, trigger=Trigger.ON_DEMAND, today=TODAY, **kwargs)


def pending(campaign):
    return Proposal.objects.filter(campaign=campaign, status=Status.PENDING)


@pytest.fixture
def change(settings, django_capture_on_commit_callbacks):
    """profile_save as the admin calls it, its re-evaluation task run at commit, here."""
    settings.CELERY_TASK_ALWAYS_EAGER = True

    def save(beneficiary, **data):
        with django_capture_on_commit_callbacks(execute=True):
            profile_save(enrolment=beneficiary.enrolments.get(), data=data)

    return save


# --- who is proposed ---------------------------------------------------------------------------


def test_a_run_proposes_the_aid_to_the_eligible_only_with_the_criteria_met(funder, campaign):
    senior = person(funder, born=date(1950, 5, 1))
    person(funder, born=date(1990, 5, 1))  # too young
    person(funder, born=date(1950, 5, 1), postcode="73000")  # Savoie

    result = run(campaign)

    proposal = pending(campaign).get()
    assert proposal.beneficiary == senior
    assert proposal.amount == 5_000
    assert {reason["criterion"]["kind"] for reason in proposal.reasons} == {"age", "departement"}
    assert "76" in eligibility.explain(proposal.reasons[0]) + eligibility.explain(
        proposal.reasons[1]
    )
    assert (result.evaluated, result.eligible, result.proposed) == (3, 1, 1)
    assert Allocation.objects.count() == 0  # nothing is granted before an agent decides


def test_a_campaign_run_twice_creates_no_duplicate_proposals(funder, campaign):
    for _ in range(3):
        person(funder)

    first, second = run(campaign), run(campaign)

    assert (first.proposed, second.proposed) == (3, 0)
    assert pending(campaign).count() == 3


def test_each_proposal_a_run_makes_has_its_creation_in_the_history_by_who_ran_it(
    funder, campaign, agent
):
    for _ in range(2):
        person(funder)
    person(funder, born=date(1990, 5, 1))  # not proposed: no proposal, no history

    made = campaign_run(campaign=campaign, trigger=Trigger.ON_DEMAND, by=agent, today=TODAY)

    proposals = list(pending(campaign).order_by("pk"))
    assert [p.run_id for p in proposals] == [made.pk, made.pk]
    history = Proposal.history.filter(id__in=[p.pk for p in proposals])
    assert sorted((h.id, h.history_type, h.history_user) for h in history) == [
        (proposals[0].pk, "+", agent),
        (proposals[1].pk, "+", agent),
    ]
    for row in history:
        assert (row.status, row.reasons, row.amount) == (
            Status.PENDING,
            Proposal.objects.get(pk=row.id).reasons,
            5_000,
        )


def test_the_amount_grows_with_dependent_children(funder, program):
    campaign = campaign_create(program=program, name="Noël", amount=5_000, amount_per_child=2_000)
    person(funder, dependent_children=3, household_size=5)

    run(campaign)

    assert pending(campaign).get().amount == 11_000


def test_people_already_holding_the_aid_are_counted_not_proposed(funder, campaign, program):
    holder = person(funder)
    make_allocation(program=program, beneficiary=holder, amount=1_000)
    person(funder)

    result = run(campaign)

    assert (result.eligible, result.already_holding, result.proposed) == (2, 1, 1)
    assert not pending(campaign).filter(beneficiary=holder).exists()
    assert result.breakdown["departement"]["38"] == {
        "evaluated": 2,
        "eligible": 2,
        "holding": 1,
        "proposed": 1,
    }
    assert result.breakdown["age_band"]["75+"]["proposed"] == 1


def test_a_pending_proposal_is_withdrawn_once_the_person_holds_the_aid(funder, campaign, program):
    someone = person(funder)
    run(campaign)
    make_allocation(program=program, beneficiary=someone, amount=1_000)

    result = run(campaign)

    proposal = Proposal.objects.get(beneficiary=someone)
    assert proposal.status == Status.WITHDRAWN
    assert proposal.unmet[0]["criterion"]["kind"] == eligibility.ALREADY_HOLDS
    assert result.withdrawn == 1


def test_people_of_another_funder_are_never_proposed(funder, other_funder, campaign):
    stranger = person(other_funder)  # eligible facts, but known to the other funder only
    shared = BeneficiaryFactory()
    beneficiary_enrol(funder=funder, beneficiary=shared)  # known here, facts only over there
    profile_save(
        enrolment=beneficiary_enrol(funder=other_funder, beneficiary=shared),
        data={"birth_date": date(1950, 1, 1), "postcode": "38000"},
        reevaluate=False,
    )

    result = run(campaign)

    assert result.evaluated == 1
    assert not Proposal.objects.filter(beneficiary__in=[stranger, shared]).exists()


def test_a_program_without_criteria_cannot_run(funder):
    campaign = campaign_create(
        program=make_program(funder=funder), name="Sans critère", amount=1_000
    )
    with pytest.raises(CampaignWithoutCriteria):
        run(campaign)


def test_the_other_aid_criterion_reads_the_persons_other_aid(funder, program, campaign):
    energy = make_program(funder=funder, funded=100_000)
    EligibilityCriterion.objects.create(
        program=program, kind="other_aid", other_program=energy, aid_condition="never_received"
    )
    got_it = person(funder)
    make_allocation(program=energy, beneficiary=got_it, amount=1_000)
    never = person(funder)

    run(campaign)

    assert list(pending(campaign).values_list("beneficiary", flat=True)) == [never.pk]


# --- data changes ------------------------------------------------------------------------------


def test_a_change_of_data_creates_a_pending_proposal(funder, campaign, change):
    young = person(funder, born=date(1990, 1, 1))
    run(campaign)
    assert not pending(campaign).exists()

    change(young, birth_date=date(1950, 1, 1))

    proposal = pending(campaign).get()
    assert proposal.beneficiary == young
    assert proposal.run.trigger == Trigger.DATA_CHANGE


def test_a_change_of_data_withdraws_a_pending_proposal_saying_why(funder, campaign, change):
    mover = person(funder)
    run(campaign)

    change(mover, postcode="73000")

    proposal = Proposal.objects.get(beneficiary=mover)
    assert proposal.status == Status.WITHDRAWN
    assert [reason["criterion"]["kind"] for reason in proposal.unmet] == ["departement"]
    assert "Savoie (73)" in eligibility.explain(proposal.unmet[0])


def test_a_rejected_proposal_comes_back_only_after_the_data_changed(funder, campaign, agent):
    someone = person(funder)
    run(campaign)
    proposal_reject(proposal=pending(campaign).get(), by=agent, reason="Déjà aidé par le CCAS")

    assert run(campaign).proposed == 0

    profile_save(enrolment=someone.enrolments.get(), data={"household_size": 2}, reevaluate=False)
    assert run(campaign).proposed == 1


def test_erasing_a_person_withdraws_their_proposal_and_deletes_their_profile(
    funder, campaign, operator
):
    someone = person(funder)
    run(campaign)

    beneficiary_erase(beneficiary=someone, by=operator, reason="Demande du 12 mai")

    proposal = Proposal.objects.get(beneficiary=someone)
    assert proposal.status == Status.WITHDRAWN
    assert proposal.unmet[0]["criterion"]["kind"] == eligibility.NOT_FOLLOWED
    assert not BeneficiaryProfile.objects.filter(enrolment__beneficiary=someone).exists()


# --- decisions ---------------------------------------------------------------------------------


def test_accepting_grants_through_the_allocation_service_and_tells_the_person(
    funder, campaign, agent, program
):
    someone = person(funder)
    run(campaign)
    proposal = pending(campaign).get()

    accepted = proposal_accept(proposal=proposal, by=agent, amount=4_000)

    allocation = accepted.allocation
    assert (accepted.status, accepted.granted_amount, accepted.decided_by) == (
        Status.ACCEPTED,
        4_000,
        agent,
    )
    assert (allocation.beneficiary, allocation.amount, allocation.program) == (
        someone,
        4_000,
        program,
    )
    assert Account.objects.get(pk=allocation.pocket.account_id).balance == 4_000
    assert Notification.objects.filter(
        beneficiary=someone, kind=Notification.Kind.ALLOCATION_GRANTED
    ).exists()
    assert accepted.history.first().history_user == agent


def test_accepting_twice_grants_once(funder, campaign, agent):
    person(funder)
    run(campaign)
    proposal = pending(campaign).get()

    first = proposal_accept(proposal=proposal, by=agent)
    second = proposal_accept(proposal=proposal, by=agent)

    assert first.allocation_id == second.allocation_id
    assert Allocation.objects.count() == 1


def test_the_grant_lasts_the_campaigns_validity(funder, program, agent):
    campaign = campaign_create(program=program, name="Hiver", amount=1_000, validity_days=30)
    person(funder)
    run(campaign)

    allocation = proposal_accept(proposal=pending(campaign).get(), by=agent).allocation

    last_day = timezone.localdate() + timedelta(days=29)
    assert timezone.localtime(allocation.valid_until - timedelta(seconds=1)).date() == last_day


def test_a_rejection_needs_a_reason_and_keeps_it(funder, campaign, agent):
    person(funder)
    run(campaign)
    proposal = pending(campaign).get()

    with pytest.raises(DecisionReasonMissing):
        proposal_reject(proposal=proposal, by=agent, reason="  ")
    rejected = proposal_reject(proposal=proposal, by=agent, reason="Hors barème")

    assert (rejected.status, rejected.decision_reason, rejected.decided_by) == (
        Status.REJECTED,
        "Hors barème",
        agent,
    )
    with pytest.raises(ProposalNotPending):
        proposal_accept(proposal=rejected, by=agent)
    assert Allocation.objects.count() == 0


def test_a_withdrawn_proposal_cannot_be_accepted(funder, campaign, agent, change):
    mover = person(funder)
    run(campaign)
    change(mover, postcode="73000")

    with pytest.raises(ProposalNotPending) as error:
        proposal_accept(proposal=Proposal.objects.get(beneficiary=mover), by=agent)
    assert error.value.code == "proposal_not_pending"


def test_bulk_acceptance_stops_at_the_programs_funds(funder, program, agent):
    # 100 000 funded: 5 proposals of 30 000 cannot all be paid.
    campaign = campaign_create(program=program, name="Gros", amount=30_000)
    for _ in range(5):
        person(funder)
    run(campaign)

    result = proposal_accept_many(proposals=list(pending(campaign)), by=agent)

    assert len(result.accepted) == 3
    assert result.left == 2
    assert "3" in result.stopped and "2" in result.stopped
    assert "100" in result.stopped or "10,00" in result.stopped or "10.00" in result.stopped
    assert Allocation.objects.filter(program=program).count() == 3
    program.float_account.refresh_from_db()
    assert program.float_account.available == 10_000
    assert pending(campaign).count() == 2


def test_a_single_acceptance_beyond_the_funds_is_refused_and_grants_nothing(funder, program):
    campaign = campaign_create(program=program, name="Trop", amount=200_000)
    person(funder)
    run(campaign)

    with pytest.raises(InsufficientFunds) as error:
        proposal_accept(proposal=pending(campaign).get(), by=None)

    assert error.value.details == {"available": 100_000, "needed": 200_000}
    assert Allocation.objects.count() == 0
    assert pending(campaign).count() == 1


def test_bulk_acceptance_skips_a_person_whose_data_was_erased(funder, campaign, operator):
    erased, kept = person(funder), person(funder)
    run(campaign)
    proposals = list(pending(campaign))
    beneficiary_erase(beneficiary=erased, by=operator, reason="Demande")

    result = proposal_accept_many(proposals=proposals, by=operator)

    assert [p.beneficiary for p in result.accepted] == [kept]
    assert len(result.refused) == 1 and not result.stopped


def test_a_revoked_grant_lets_the_campaign_propose_nothing_again(funder, campaign, agent):
    person(funder)
    run(campaign)
    allocation = proposal_accept(proposal=pending(campaign).get(), by=agent).allocation
    allocation_revoke(allocation=allocation, reason="Erreur")

    assert run(campaign).proposed == 0  # one grant per person per campaign


# --- schedule ----------------------------------------------------------------------------------


def test_scheduled_campaigns_are_due_a_period_after_their_last_full_run(program):
    daily = campaign_create(program=program, name="Quotidienne", amount=1_000, frequency="daily")
    campaign_create(program=program, name="À la demande", amount=1_000)
    now = timezone.now()

    assert campaigns_due(now=now) == [daily]
    Campaign.objects.filter(pk=daily.pk).update(last_run_at=now - timedelta(hours=5))
    assert campaigns_due(now=now) == []
    assert campaigns_due(now=now + timedelta(hours=20)) == [daily]


def test_the_scheduled_task_runs_the_due_campaigns_past_one_without_criteria(funder, program):
    # given a daily campaign on a program without criteria, and one on a program with criteria
    bare = make_program(funder=funder, funded=10_000)
    idle = campaign_create(program=bare, name="Sans critères", amount=1_000, frequency="daily")
    daily = campaign_create(program=program, name="Quotidienne", amount=1_000, frequency="daily")
    # when the beat's task runs
    made = tasks.campaigns_run_due()
    # then the one with criteria ran on schedule; the other was left to its page to explain
    assert made == 1
    assert daily.runs.get().trigger == Trigger.SCHEDULE
    assert not idle.runs.exists()


def test_a_full_run_records_when_it_ran_and_a_partial_one_does_not(funder, campaign):
    someone = person(funder)
    campaign_run(
        campaign=campaign, trigger=Trigger.DATA_CHANGE, beneficiary_ids=[someone.pk], today=TODAY
    )
    campaign.refresh_from_db()
    assert campaign.last_run_at is None

    run(campaign)
    campaign.refresh_from_db()
    assert campaign.last_run_at is not None


# --- concurrency (PostgreSQL) ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_propose_to_each_person_once(funder, campaign):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are proven on PostgreSQL")
    for _ in range(20):
        person(funder)
    barrier = threading.Barrier(2)
    errors = []

    def go():
        try:
            barrier.wait()
            run(campaign)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=go) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert pending(campaign).count() == 20
    assert sorted(CampaignRun.objects.values_list("proposed", flat=True)) == [0, 20]


def test_erasure_pseudonymises_profile_import_reports_and_exports_profiles(
    funder, campaign, operator
):
    from funders.models import ProfileImport
    from gdpr.services import beneficiary_data_export

    someone = person(funder, household_size=3)
    run(campaign)
    export = beneficiary_data_export(beneficiary=someone)
    assert export["eligibility_profiles"][0]["household_size"] == 3
    assert export["aid_proposals"][0]["status"] == Status.PENDING
    report = [{"beneficiary_id": someone.pk, "name": str(someone), "reference": "D1"}]
    done = ProfileImport.objects.create(
        funder=funder,
        filename="f.csv",
        content=b"data",
        digest="0" * 64,
        legal_basis="public_task",
        status="applied",
        report=report,
    )

    beneficiary_erase(beneficiary=someone, by=operator, reason="Demande")

    done.refresh_from_db()
    assert done.report[0]["name"].startswith("Personne effacée")
    assert done.report[0]["reference"] == ""
    assert bytes(done.content) == b""


def test_registering_a_person_in_the_admin_evaluates_the_campaigns(
    funder, program, agent, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    EligibilityCriterion.objects.filter(program=program, kind="age").delete()
    campaign = campaign_create(program=program, name="Isère", amount=1_000)

    with django_capture_on_commit_callbacks(execute=True):
        answer = client_for(agent).post(
            reverse("admin:wallet_beneficiary_add"),
            {
                "first_name": "Odette",
                "last_name": "Girard",
                "email": "odette@example.org",
                "postcode": "38100",
                "preferred_language": "fr",
                "funder": funder.pk,
                "reference": "DOS-42",
            },
        )

    assert answer.status_code == 302
    assert pending(campaign).get().beneficiary.last_name == "Girard"


def test_a_grant_from_a_proposal_explains_itself_on_the_allocation_page(funder, campaign, agent):
    person(funder)
    run(campaign)
    allocation = proposal_accept(proposal=pending(campaign).get(), by=agent).allocation

    page = client_for(agent).get(reverse("admin:funders_allocation_change", args=[allocation.pk]))

    text = page.content.decode()
    assert "Aide seniors Isère" in text
    assert "Isère (38)" in text and "65" in text


@pytest.mark.django_db(transaction=True)
def test_two_agents_accepting_one_proposal_at_once_grant_once(funder, campaign, agent, manager):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are proven on PostgreSQL")
    person(funder)
    run(campaign)
    proposal = pending(campaign).get()
    barrier = threading.Barrier(2)
    results, errors = [], []

    def accept(by):
        try:
            barrier.wait()
            results.append(proposal_accept(proposal=proposal, by=by).allocation_id)
        except Exception as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=accept, args=(user,)) for user in (agent, manager)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(set(results)) == 1
    assert Allocation.objects.count() == 1
    program = campaign.program
    program.float_account.refresh_from_db()
    assert program.float_account.available == 100_000 - 5_000
