"""The review back office of proactive aid: campaigns, the review of proposals one by one and in
bulk, the export of decisions, and the eligibility criteria on the program's page."""

import csv
import html
import io
from datetime import date

import openpyxl
import pytest
from django.contrib import messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone, translation

from backoffice import exports
from core.money import cents_to_euros_text
from core.time import PARIS
from funders import eligibility
from funders.campaigns import campaign_create, proposal_accept, proposal_reject
from funders.models import (
    Allocation,
    BeneficiaryProfile,
    Campaign,
    CampaignRun,
    EligibilityCriterion,
    Enrolment,
    Proposal,
)
from funders.services import beneficiary_enrol
from tests.factories import BeneficiaryFactory, make_program, make_staff
from wallet.models.notifications import Notification

pytestmark = pytest.mark.django_db

Status = Proposal.Status
PROPOSALS = "/admin/funders/proposal/"
CAMPAIGNS = "/admin/funders/campaign/"
PROGRAMS = "/admin/funders/program/"
AGED_72 = {"criterion": {"kind": "age", "minimum": 65}, "met": True, "fact": 72}
IN_ISERE = {"criterion": {"kind": "departement", "values": ["38"]}, "met": True, "fact": "38"}


# --- data -----------------------------------------------------------------------------------------


@pytest.fixture
def program(funder):
    return make_program(funder=funder, funded=100_000)


@pytest.fixture
def campaign(program):
    EligibilityCriterion.objects.create(program=program, kind="age", minimum=65)
    return campaign_create(program=program, name="Seniors 2026", amount=5_000)


def person(funder, reference: str = "", **fields):
    beneficiary = BeneficiaryFactory(**fields)
    beneficiary_enrol(funder=funder, beneficiary=beneficiary, reference=reference)
    return beneficiary


def propose(campaign, beneficiary=None, *, amount: int = 5_000, **fields) -> Proposal:
    fields = {
        "reasons": [AGED_72, IN_ISERE],
        "departement": "38",
        "age_band": "60-74",
        "household_type": "alone",
        **fields,
    }
    return Proposal.objects.create(
        campaign=campaign,
        beneficiary=beneficiary or person(campaign.program.funder),
        amount=amount,
        **fields,
    )


def review_url(proposal) -> str:
    return f"{PROPOSALS}{proposal.pk}/change/"


def campaign_url(campaign, view: str = "change") -> str:
    return f"{CAMPAIGNS}{campaign.pk}/{view}/"


def page_text(response) -> str:
    return html.unescape(response.content.decode())


def in_page_language(response):
    return translation.override(response.headers["Content-Language"])


def message_levels(response) -> list[int]:
    return [message.level for message in get_messages(response.wsgi_request)]


def select(client, action: str, proposals, **data):
    return client.post(
        PROPOSALS, {"action": action, ACTION_CHECKBOX_NAME: [p.pk for p in proposals], **data}
    )


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


# --- reviewing one proposal -----------------------------------------------------------------------


def test_an_agent_accepts_a_proposal_for_another_amount(agent_client, agent, campaign):
    proposal = propose(campaign)

    response = agent_client.post(review_url(proposal), {"accept-amount": "62,50", "_accept": "1"})

    assert response.status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == Status.ACCEPTED
    assert (proposal.amount, proposal.granted_amount) == (5_000, 6_250)
    assert proposal.decided_by == agent
    allocation = proposal.allocation
    assert (allocation.amount, allocation.program, allocation.beneficiary) == (
        6_250,
        campaign.program,
        proposal.beneficiary,
    )
    assert Notification.objects.filter(
        beneficiary=proposal.beneficiary, kind=Notification.Kind.ALLOCATION_GRANTED
    ).exists()
    assert proposal.history.first().history_user == agent


def test_accepting_the_amount_proposed_grants_it(agent_client, campaign):
    proposal = propose(campaign, amount=4_200)
    shown = agent_client.get(review_url(proposal))
    with in_page_language(shown):  # prefilled with the amount proposed, in euros
        assert shown.context["accept_form"]["amount"].value() == cents_to_euros_text(4_200)

    agent_client.post(review_url(proposal), {"accept-amount": "42.00", "_accept": "1"})

    proposal.refresh_from_db()
    assert (proposal.status, proposal.granted_amount, proposal.allocation.amount) == (
        Status.ACCEPTED,
        4_200,
        4_200,
    )


def test_an_amount_that_is_not_one_is_refused_and_nothing_changes(agent_client, campaign):
    proposal = propose(campaign)

    response = agent_client.post(review_url(proposal), {"accept-amount": "12,345", "_accept": "1"})

    assert response.status_code == 200
    assert response.context["accept_form"].has_error("amount", "too_many_decimals")
    proposal.refresh_from_db()
    assert proposal.status == Status.PENDING
    assert not Allocation.objects.exists()


def test_accepting_beyond_the_programs_funds_shows_the_error_and_grants_nothing(
    agent_client, funder
):
    program = make_program(funder=funder, funded=10_000)
    campaign = campaign_create(program=program, name="Petit budget", amount=5_000)
    proposal = propose(campaign)

    response = agent_client.post(review_url(proposal), {"accept-amount": "150", "_accept": "1"})

    assert response.status_code == 200
    assert messages.ERROR in message_levels(response)
    proposal.refresh_from_db()
    assert (proposal.status, proposal.allocation_id) == (Status.PENDING, None)
    program.float_account.refresh_from_db()
    assert program.float_account.available == 10_000


def test_rejecting_needs_a_reason(agent_client, campaign):
    proposal = propose(campaign)

    response = agent_client.post(review_url(proposal), {"reject-reason": "  ", "_reject": "1"})

    assert response.status_code == 200
    assert response.context["reject_form"].has_error("reason", "required")
    proposal.refresh_from_db()
    assert (proposal.status, proposal.decided_by, proposal.decision_reason) == (
        Status.PENDING,
        None,
        "",
    )


def test_an_agent_rejects_with_a_reason_that_is_kept(agent_client, agent, campaign):
    proposal = propose(campaign)

    response = agent_client.post(
        review_url(proposal), {"reject-reason": "Déjà aidée par le CCAS", "_reject": "1"}
    )

    assert response.status_code == 302
    proposal.refresh_from_db()
    assert proposal.status == Status.REJECTED
    assert proposal.decision_reason == "Déjà aidée par le CCAS"
    assert proposal.decided_by == agent
    assert proposal.decided_at is not None
    assert proposal.allocation_id is None
    page = page_text(agent_client.get(review_url(proposal)))
    assert "Déjà aidée par le CCAS" in page
    assert 'name="_accept"' not in page  # decided: no more decision to take


def test_the_review_page_says_who_why_and_how_much(agent_client, funder, campaign):
    beneficiary = person(funder, reference="D-0042", last_name="Lambert")
    proposal = propose(campaign, beneficiary)

    response = agent_client.get(review_url(proposal))

    assert response.status_code == 200
    page = page_text(response)
    assert "Lambert" in page
    assert "D-0042" in page
    with in_page_language(response):
        assert eligibility.explain(AGED_72) in page
        assert eligibility.explain(IN_ISERE) in page
    history = reverse("admin:funders_proposal_history", args=[proposal.pk])
    assert history in page
    assert agent_client.get(history).status_code == 200
    assert 'name="_accept"' in page and 'name="_reject"' in page


def test_a_withdrawn_proposal_says_why_and_cannot_be_decided(agent_client, campaign):
    gone = {"criterion": {"kind": "age", "minimum": 65}, "met": False, "fact": None}
    proposal = propose(campaign, status=Status.WITHDRAWN, unmet=[gone])

    response = agent_client.get(review_url(proposal))
    with in_page_language(response):
        assert eligibility.explain(gone) in page_text(response)
    assert 'name="_accept"' not in page_text(response)

    agent_client.post(review_url(proposal), {"accept-amount": "50", "_accept": "1"})
    proposal.refresh_from_db()
    assert proposal.status == Status.WITHDRAWN
    assert not Allocation.objects.exists()


def test_an_accepted_proposal_links_to_its_allocation(agent_client, agent, campaign):
    proposal = proposal_accept(proposal=propose(campaign), by=agent)

    page = page_text(agent_client.get(review_url(proposal)))

    assert reverse("admin:funders_allocation_change", args=[proposal.allocation_id]) in page


def test_nothing_is_added_edited_or_deleted_by_hand(agent_client, manager_client, campaign):
    proposal = propose(campaign)
    for client in (agent_client, manager_client):
        assert client.get(f"{PROPOSALS}add/").status_code == 403
        client.post(review_url(proposal), {"amount": "1", "status": Status.REJECTED})
        assert client.post(f"{PROPOSALS}{proposal.pk}/delete/").status_code == 403
    proposal.refresh_from_db()
    assert (proposal.status, proposal.amount) == (Status.PENDING, 5_000)


# --- deciding in bulk -----------------------------------------------------------------------------


def test_bulk_acceptance_stops_at_the_programs_funds(agent_client, funder):
    program = make_program(funder=funder, funded=10_000)
    campaign = campaign_create(program=program, name="Hiver", amount=4_000)
    proposals = [propose(campaign, amount=4_000) for _ in range(3)]

    response = select(agent_client, "accept_selected", proposals)

    assert response.status_code == 302
    for proposal in proposals:
        proposal.refresh_from_db()
    assert [p.status for p in proposals] == [Status.ACCEPTED, Status.ACCEPTED, Status.PENDING]
    assert Allocation.objects.filter(program=program).count() == 2
    program.float_account.refresh_from_db()
    assert program.float_account.available == 2_000
    levels = message_levels(response)
    assert messages.SUCCESS in levels
    assert messages.ERROR in levels  # where and why it stopped
    stopped = next(m for m in get_messages(response.wsgi_request) if m.level == messages.ERROR)
    assert "1" in stopped.message  # how many were left waiting


def test_bulk_acceptance_leaves_decided_proposals_alone(agent_client, agent, campaign):
    decided = proposal_reject(proposal=propose(campaign), by=agent, reason="Hors secteur")
    waiting = propose(campaign)

    select(agent_client, "accept_selected", [decided, waiting])

    decided.refresh_from_db()
    waiting.refresh_from_db()
    assert (decided.status, waiting.status) == (Status.REJECTED, Status.ACCEPTED)
    assert Allocation.objects.count() == 1


def test_bulk_rejection_asks_the_reason_on_a_confirmation_page(agent_client, agent, campaign):
    proposals = [propose(campaign) for _ in range(2)]

    asked = select(agent_client, "reject_selected", proposals)
    assert asked.status_code == 200
    assert "admin/funders/proposal/reject.html" in [t.name for t in asked.templates]
    no_reason = select(agent_client, "reject_selected", proposals, confirm="1")
    assert no_reason.status_code == 200
    assert no_reason.context["form"].has_error("reason", "required")
    assert set(Proposal.objects.values_list("status", flat=True)) == {Status.PENDING}

    done = select(
        agent_client, "reject_selected", proposals, confirm="1", **{"reject-reason": "Doublon"}
    )

    assert done.status_code == 302
    for proposal in proposals:
        proposal.refresh_from_db()
        assert (proposal.status, proposal.decision_reason, proposal.decided_by) == (
            Status.REJECTED,
            "Doublon",
            agent,
        )


# --- another funder -------------------------------------------------------------------------------


def test_another_funders_staff_never_reach_a_campaign_or_its_proposals(other_client, campaign):
    proposal = propose(campaign)

    assert other_client.get(review_url(proposal)).status_code == 404
    accept = {"accept-amount": "50", "_accept": "1"}
    assert other_client.post(review_url(proposal), accept).status_code == 404
    assert (
        other_client.post(review_url(proposal), {"reject-reason": "x", "_reject": "1"}).status_code
        == 404
    )
    assert other_client.post(campaign_url(campaign, "run")).status_code == 404
    assert other_client.get(campaign_url(campaign, "fairness")).status_code == 404
    for file_format in ("csv", "xlsx"):
        assert other_client.get(campaign_url(campaign, f"export/{file_format}")).status_code == 404
    select(other_client, "accept_selected", [proposal])
    select(other_client, "reject_selected", [proposal], confirm="1", **{"reject-reason": "x"})

    proposal.refresh_from_db()
    assert proposal.status == Status.PENDING
    assert not Allocation.objects.exists()
    assert campaign.name not in page_text(other_client.get(PROPOSALS))
    assert campaign.name not in page_text(other_client.get(CAMPAIGNS))


# --- the lists ------------------------------------------------------------------------------------


def test_the_proposal_list_costs_the_same_queries_for_more_rows(agent_client, funder, campaign):
    propose(campaign, person(funder, reference="D-1"))
    few = count_queries(agent_client, PROPOSALS)
    for n in range(6):
        propose(campaign, person(funder, reference=f"D-{n + 2}"), age_band="75+")
    assert count_queries(agent_client, PROPOSALS) == few


def test_the_proposal_list_shows_the_file_number_and_finds_by_it(agent_client, funder, campaign):
    found = propose(campaign, person(funder, reference="CD38-777", last_name="Perrin"))
    propose(campaign, person(funder, reference="CD38-111", last_name="Girard"))

    listed = page_text(agent_client.get(PROPOSALS))
    searched = page_text(agent_client.get(PROPOSALS, {"q": "777"}))

    assert "Perrin" in listed and "CD38-777" in listed and "Girard" in listed
    assert f"/{found.pk}/change/" in searched
    assert "Girard" not in searched


def test_the_proposal_list_filters_by_group_and_campaign(agent_client, program, campaign):
    old = propose(campaign, age_band="75+")
    young = propose(campaign, age_band="18-25")
    elsewhere = propose(campaign_create(program=program, name="Autre", amount=1_000))

    by_age = page_text(agent_client.get(PROPOSALS, {"age_band": "75+"}))
    by_campaign = page_text(agent_client.get(PROPOSALS, {"campaign__id__exact": campaign.pk}))

    assert f"/{old.pk}/change/" in by_age
    assert f"/{young.pk}/change/" not in by_age
    assert f"/{young.pk}/change/" in by_campaign
    assert f"/{elsewhere.pk}/change/" not in by_campaign


def test_the_campaign_list_counts_pending_proposals_without_a_query_per_row(
    agent_client, funder, program, campaign
):
    propose(campaign)
    propose(campaign, status=Status.WITHDRAWN)
    few = count_queries(agent_client, CAMPAIGNS)
    for n in range(4):
        other = campaign_create(program=program, name=f"Campagne {n}", amount=1_000)
        propose(other)
    response = agent_client.get(CAMPAIGNS)

    assert count_queries(agent_client, CAMPAIGNS) == few
    row = next(r for r in response.context["cl"].result_list if r.pk == campaign.pk)
    assert row.pending_count == 1


# --- campaigns ------------------------------------------------------------------------------------


def test_a_manager_creates_a_campaign_in_euros(manager_client, manager, program):
    response = manager_client.post(
        f"{CAMPAIGNS}add/",
        {
            "program": program.pk,
            "name": "Rentrée 2026",
            "amount": "50,00",
            "amount_per_child": "12.50",
            "validity_days": "90",
            "frequency": Campaign.Frequency.WEEKLY,
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign = Campaign.objects.get(name="Rentrée 2026")
    assert (campaign.amount, campaign.amount_per_child, campaign.validity_days) == (
        5_000,
        1_250,
        90,
    )
    assert campaign.created_by == manager
    assert campaign.is_active


def test_a_campaign_amount_must_be_euros_and_cents(manager_client, program):
    response = manager_client.post(
        f"{CAMPAIGNS}add/",
        {"program": program.pk, "name": "X", "amount": "50,001", "frequency": "on_demand"},
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.has_error("amount", "too_many_decimals")
    assert not Campaign.objects.exists()


def test_an_agent_cannot_create_a_campaign(agent_client, program):
    assert agent_client.get(f"{CAMPAIGNS}add/").status_code == 403


def test_a_campaign_cannot_be_made_on_another_funders_program(manager_client, other_funder):
    theirs = make_program(funder=other_funder)
    response = manager_client.post(
        f"{CAMPAIGNS}add/",
        {"program": theirs.pk, "name": "Intrus", "amount": "10", "frequency": "on_demand"},
    )
    assert response.context["adminform"].form.has_error("program", "invalid_choice")
    assert not Campaign.objects.exists()


def test_a_manager_runs_a_campaign_now(
    manager_client, manager, funder, campaign, settings, django_capture_on_commit_callbacks
):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    senior = person(funder)
    enrolment = Enrolment.objects.get(funder=funder, beneficiary=senior)
    BeneficiaryProfile.objects.create(enrolment=enrolment, birth_date=date(1950, 5, 1))
    person(funder)  # no birth date known: not proposed

    with django_capture_on_commit_callbacks(execute=True):
        response = manager_client.post(campaign_url(campaign, "run"))

    assert response.status_code == 302
    assert messages.SUCCESS in message_levels(response)
    run = campaign.runs.get()
    assert (run.status, run.trigger, run.started_by) == (
        CampaignRun.Status.DONE,
        CampaignRun.Trigger.ON_DEMAND,
        manager,
    )
    assert (run.evaluated, run.eligible, run.proposed) == (2, 1, 1)
    assert list(campaign.proposals.values_list("beneficiary", flat=True)) == [senior.pk]
    shown = manager_client.get(campaign_url(campaign))
    assert shown.context["runs"] == [run]  # the table of the last runs
    page = page_text(shown)
    assert campaign_url(campaign, "run") in page


def test_running_is_a_post_for_managers(agent_client, manager_client, campaign):
    assert manager_client.get(campaign_url(campaign, "run")).status_code == 405
    assert agent_client.post(campaign_url(campaign, "run")).status_code == 403
    assert not CampaignRun.objects.exists()


def test_a_campaign_without_criteria_says_so_instead_of_running(
    manager_client, program, django_capture_on_commit_callbacks
):
    campaign = campaign_create(program=program, name="Sans critères", amount=1_000)
    with django_capture_on_commit_callbacks() as queued:
        response = manager_client.post(campaign_url(campaign, "run"))
    assert response.status_code == 302
    assert messages.ERROR in message_levels(response)
    assert not queued


def test_an_agent_sees_the_campaign_its_tools_but_not_the_run_button(agent_client, campaign):
    response = agent_client.get(campaign_url(campaign))

    assert response.status_code == 200
    page = page_text(response)
    assert campaign_url(campaign, "run") not in page
    assert campaign_url(campaign, "fairness") in page
    assert campaign_url(campaign, "export/csv") in page
    assert f"{PROPOSALS}?campaign__id__exact={campaign.pk}" in page
    assert agent_client.get(campaign_url(campaign, "history")).status_code == 200
    assert 'name="_save"' not in page


def test_the_fairness_page_shows_a_table_per_dimension(agent_client, campaign):
    propose(campaign, departement="73")

    response = agent_client.get(campaign_url(campaign, "fairness"))

    assert response.status_code == 200
    with in_page_language(response):
        assert eligibility.group_label("departement", "73") in page_text(response)
        assert eligibility.group_label("age_band", "60-74") in page_text(response)
    assert [table.dimension for table, _svg in response.context["tables"]] == [
        "departement",
        "age_band",
        "household_type",
    ]


# --- the export of decisions ----------------------------------------------------------------------

COLUMNS = [
    "proposal",
    "campaign",
    "program",
    "file number",
    "first name",
    "last name",
    "département",
    "age band",
    "household",
    "criteria met",
    "currency",
    "amount proposed",
    "amount proposed (cents)",
    "amount granted",
    "amount granted (cents)",
    "status",
    "decided by",
    "decided at",
    "reason",
    "criteria no longer met",
    "allocation",
    "proposed at",
]


@pytest.fixture
def decisions(funder, campaign, agent):
    agent.first_name, agent.last_name = "Lucie", "Martin"
    agent.save()
    clerk = make_staff(funder=funder, role="agent", username="clerk")
    accepted = proposal_accept(
        proposal=propose(campaign, person(funder, "D-1", first_name="Anne", last_name="Roux")),
        by=agent,
        amount=6_250,
    )
    rejected = proposal_reject(
        proposal=propose(campaign, person(funder, "D-2", last_name="Blanc"), age_band="75+"),
        by=clerk,
        reason='=HYPERLINK("http://evil")',
    )
    gone = {"criterion": {"kind": "age", "minimum": 65}, "met": False, "fact": 64}
    withdrawn = propose(
        campaign,
        person(funder, last_name="Noir"),
        status=Status.WITHDRAWN,
        unmet=[gone],
        departement="",
        decided_at=timezone.now(),
    )
    return accepted, rejected, withdrawn, gone


def test_the_decisions_export_in_csv(decisions, campaign):
    accepted, _rejected, _withdrawn, gone = decisions
    with translation.override("en"):
        filename, content_type, content = exports.campaign_decisions_export(
            campaign=campaign, file_format="csv"
        )
        met = f"{eligibility.explain(AGED_72)} ; {eligibility.explain(IN_ISERE)}"
        unmet = eligibility.explain(gone)
        unknown = eligibility.group_label("departement", "")

    assert content_type == "text/csv"
    assert filename.startswith("seniors-2026-decisions-") and filename.endswith(".csv")
    reader = csv.DictReader(io.StringIO(content.decode("utf-8-sig")))
    assert reader.fieldnames == COLUMNS
    first, second, third = list(reader)
    assert first["proposal"] == str(accepted.pk)
    assert (first["campaign"], first["program"]) == ("Seniors 2026", campaign.program.name)
    assert (first["file number"], first["first name"], first["last name"]) == (
        "D-1",
        "Anne",
        "Roux",
    )
    assert (first["département"], first["age band"], first["household"]) == (
        "Isère (38)",
        "60 to 74",
        "living alone",
    )
    assert first["criteria met"] == met
    assert (first["amount proposed"], first["amount proposed (cents)"]) == ("50.00", "5000")
    assert (first["amount granted"], first["amount granted (cents)"]) == ("62.50", "6250")
    assert (first["status"], first["decided by"]) == ("Accepted", "Lucie Martin")
    assert first["decided at"] == timezone.localtime(accepted.decided_at, PARIS).isoformat(
        timespec="seconds"
    )
    assert first["allocation"] == str(accepted.allocation_id)
    assert (second["status"], second["decided by"]) == ("Rejected", "clerk")
    assert second["reason"] == '\'=HYPERLINK("http://evil")'  # not run as a formula
    assert (second["amount granted"], second["allocation"], second["age band"]) == (
        "",
        "",
        "75 and over",
    )
    assert (third["status"], third["criteria no longer met"]) == ("Withdrawn", unmet)
    assert third["département"] == unknown


def test_the_decisions_export_neutralises_a_formula_like_decider(funder, campaign):
    """Who decided is typed by people (a staff member's name): a spreadsheet must not run it."""
    named = make_staff(funder=funder, role="agent", username="named", first_name="=SUM(A1)")
    unnamed = make_staff(funder=funder, role="agent", username="@clerk")
    for reference, clerk in (("D-9", named), ("D-10", unnamed)):
        proposal = propose(campaign, person(funder, reference))
        proposal_reject(proposal=proposal, by=clerk, reason="Not eligible")
    with translation.override("en"):
        _name, _type, content = exports.campaign_decisions_export(
            campaign=campaign, file_format="csv"
        )
    rows = list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))
    assert [row["decided by"] for row in rows] == ["'=SUM(A1)", "'@clerk"]


def test_the_decisions_export_in_xlsx(decisions, campaign):
    accepted, *_ = decisions
    with translation.override("en"):
        _name, _type, content = exports.campaign_decisions_export(
            campaign=campaign, file_format="xlsx"
        )
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    header, *rows = sheet.iter_rows(values_only=True)
    assert list(header) == COLUMNS
    first = dict(zip(header, rows[0], strict=True))
    assert (first["proposal"], first["amount granted"], first["amount granted (cents)"]) == (
        accepted.pk,
        "62.50",
        6_250,
    )
    assert len(rows) == 3


def test_an_agent_downloads_the_decisions(agent_client, decisions, campaign):
    response = agent_client.get(campaign_url(campaign, "export/csv"))
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"].startswith("attachment")
    assert len(list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))) == 4
    assert agent_client.get(campaign_url(campaign, "export/pdf")).status_code == 404


# --- the criteria on the program's page -----------------------------------------------------------


def program_page(program, criteria: list[dict], *, initial: int = 0) -> dict:
    data = {
        "name": program.name,
        "purpose": program.purpose,
        "is_active": "on",
        "criteria-TOTAL_FORMS": str(len(criteria)),
        "criteria-INITIAL_FORMS": str(initial),
        "criteria-MIN_NUM_FORMS": "0",
        "criteria-MAX_NUM_FORMS": "1000",
    }
    for index, criterion in enumerate(criteria):
        data |= {f"criteria-{index}-{name}": value for name, value in criterion.items()}
    return data


def criterion_errors(response) -> list[dict]:
    formset = response.context["inline_admin_formsets"][0].formset
    return [form.errors for form in formset.forms]


@pytest.mark.parametrize(
    ("criterion", "field"),
    [
        ({"kind": "age"}, "minimum"),  # neither a minimum nor a maximum
        ({"kind": "age", "minimum": "70", "maximum": "60"}, "maximum"),
        ({"kind": "departement", "values": "99"}, "values"),
        ({"kind": "other_aid", "aid_condition": "holds"}, "other_program"),
    ],
)
def test_an_invalid_criterion_is_refused_on_its_field(manager_client, program, criterion, field):
    response = manager_client.post(
        f"{PROGRAMS}{program.pk}/change/", program_page(program, [criterion])
    )

    assert response.status_code == 200
    assert field in criterion_errors(response)[0]
    assert not EligibilityCriterion.objects.exists()


def test_a_valid_criterion_is_saved_described_and_kept_in_history(manager_client, manager, program):
    response = manager_client.post(
        f"{PROGRAMS}{program.pk}/change/",
        program_page(program, [{"kind": "departement", "values": "38, 73"}]),
    )

    assert response.status_code == 302
    criterion = EligibilityCriterion.objects.get(program=program)
    assert (criterion.kind, criterion.values) == ("departement", ["38", "73"])
    record = criterion.history.get()
    assert (record.history_type, record.history_user) == ("+", manager)
    page = manager_client.get(f"{PROGRAMS}{program.pk}/change/")
    with in_page_language(page):
        # Once in the criteria's table ("in words"), once in the latest changes.
        assert page_text(page).count(eligibility.describe(criterion)) == 2


def test_a_criterion_names_only_the_same_funders_other_programs(
    manager_client, funder, other_funder, program
):
    ours = make_program(funder=funder)
    theirs = make_program(funder=other_funder)
    shown = manager_client.get(f"{PROGRAMS}{program.pk}/change/")
    formset = shown.context["inline_admin_formsets"][0].formset
    choices = set(formset.empty_form.fields["other_program"].queryset)
    assert ours in choices and theirs not in choices and program not in choices

    response = manager_client.post(
        f"{PROGRAMS}{program.pk}/change/",
        program_page(
            program,
            [{"kind": "other_aid", "other_program": theirs.pk, "aid_condition": "does_not_hold"}],
        ),
    )
    assert response.status_code == 200
    assert criterion_errors(response)[0].as_data()["other_program"][0].code == "invalid_choice"
    assert not EligibilityCriterion.objects.exists()


def test_an_agent_reads_the_criteria_but_cannot_edit_them(agent_client, program):
    criterion = EligibilityCriterion.objects.create(program=program, kind="age", minimum=65)

    response = agent_client.get(f"{PROGRAMS}{program.pk}/change/")

    assert response.status_code == 200
    with in_page_language(response):
        assert eligibility.describe(criterion) in page_text(response)
    assert 'name="criteria-0-kind"' not in page_text(response)
    changed = agent_client.post(
        f"{PROGRAMS}{program.pk}/change/",
        program_page(
            program,
            [{"id": criterion.pk, "program": program.pk, "kind": "age", "minimum": "18"}],
            initial=1,
        ),
    )
    assert changed.status_code == 403
    criterion.refresh_from_db()
    assert criterion.minimum == 65
