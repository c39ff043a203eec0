"""The fairness view's figures: who a campaign evaluated, found eligible, found already holding
the aid, proposed it to, and what the agents decided, per département, age band and household."""

from datetime import date

import pytest

from funders import eligibility
from funders.campaigns import campaign_create, campaign_run, proposal_accept, proposal_reject
from funders.fairness import campaign_fairness, latest_full_run, percent
from funders.models import BeneficiaryProfile, CampaignRun, EligibilityCriterion, Proposal
from funders.services import beneficiary_enrol
from tests.factories import BeneficiaryFactory, make_allocation, make_program, make_staff

pytestmark = pytest.mark.django_db

Status = Proposal.Status
Trigger = CampaignRun.Trigger
FIGURES = ("evaluated", "eligible", "holding", "not_holding", "proposed")
DECISIONS = ("accepted", "rejected", "pending", "withdrawn")


def figures(row) -> tuple:
    return tuple(getattr(row, name) for name in (*FIGURES, *DECISIONS))


def by_key(table) -> dict:
    return {row.key: row for row in table.rows}


@pytest.mark.parametrize(
    ("part", "whole", "expected"),
    [(0, 0, None), (0, 4, 0), (1, 3, 33), (2, 3, 67), (1, 8, 13), (1, 200, 1), (5, 5, 100)],
)
def test_shares_are_whole_percentages_rounded_half_up(part, whole, expected):
    assert percent(part, whole) == expected


# --- a built scenario --------------------------------------------------------------------------


@pytest.fixture
def campaign(funder):
    program = make_program(funder=funder, funded=100_000)
    return campaign_create(program=program, name="Seniors", amount=5_000)


def run(campaign, trigger=Trigger.ON_DEMAND, status=CampaignRun.Status.DONE, **breakdown):
    return CampaignRun.objects.create(
        campaign=campaign, trigger=trigger, status=status, breakdown=breakdown
    )


def propose(campaign, departement, age_band, household_type, status=Status.PENDING):
    beneficiary = BeneficiaryFactory()
    beneficiary_enrol(funder=campaign.program.funder, beneficiary=beneficiary)
    return Proposal.objects.create(
        campaign=campaign,
        beneficiary=beneficiary,
        amount=5_000,
        reasons=[],
        departement=departement,
        age_band=age_band,
        household_type=household_type,
        status=status,
    )


@pytest.fixture
def scenario(campaign, agent):
    run(campaign, departement={"38": {"evaluated": 99, "eligible": 99, "holding": 99}})  # older
    chosen = run(
        campaign,
        departement={
            "38": {"evaluated": 10, "eligible": 6, "holding": 2},
            "73": {"evaluated": 5, "eligible": 3, "holding": 0},
            "": {"evaluated": 2},
        },
        age_band={
            "75+": {"evaluated": 4, "eligible": 4, "holding": 1},
            "60-74": {"evaluated": 8, "eligible": 5, "holding": 1},
            "": {"evaluated": 5},
        },
        household_type={
            "children_1_2": {"evaluated": 7, "eligible": 2},
            "alone": {"evaluated": 10, "eligible": 7, "holding": 2},
        },
    )
    # Neither a run over a few people nor a failed run makes the denominators.
    run(campaign, Trigger.DATA_CHANGE, departement={"38": {"evaluated": 1, "eligible": 1}})
    run(campaign, status=CampaignRun.Status.FAILED)

    proposal_accept(proposal=propose(campaign, "38", "60-74", "alone"), by=agent)
    proposal_reject(proposal=propose(campaign, "38", "60-74", "alone"), by=agent, reason="Non")
    propose(campaign, "38", "60-74", "alone")
    proposal_reject(proposal=propose(campaign, "73", "75+", "alone"), by=agent, reason="Non")
    propose(campaign, "73", "75+", "alone", status=Status.WITHDRAWN)
    propose(campaign, "2A", "", "")
    return chosen


def test_the_denominators_come_from_the_latest_complete_run(campaign, scenario):
    assert latest_full_run(campaign) == scenario
    assert all(table.run == scenario for table in campaign_fairness(campaign))


def test_figures_per_departement(campaign, scenario):
    departements = campaign_fairness(campaign)[0]

    assert departements.dimension == "departement"
    assert [row.key for row in departements.rows] == ["2A", "38", "73", ""]
    rows = by_key(departements)
    #                                eval elig hold not prop acc rej pend withdrawn
    assert figures(rows["38"]) == (10, 6, 2, 4, 3, 1, 1, 1, 0)
    assert figures(rows["73"]) == (5, 3, 0, 3, 2, 0, 1, 0, 1)
    assert figures(rows["2A"]) == (0, 0, 0, 0, 1, 0, 0, 1, 0)
    assert figures(rows[""]) == (2, 0, 0, 0, 0, 0, 0, 0, 0)
    assert figures(departements.total) == (17, 9, 2, 7, 6, 1, 2, 2, 1)
    assert (rows["38"].eligible_share, rows["38"].holding_share, rows["38"].refusal_rate) == (
        60,
        33,
        50,
    )
    assert (rows["73"].holding_share, rows["73"].refusal_rate) == (0, 100)
    assert (rows["2A"].eligible_share, rows["2A"].refusal_rate) == (None, None)
    assert departements.total.refusal_rate == 67
    assert rows["38"].label == eligibility.group_label("departement", "38")
    assert rows[""].label == eligibility.group_label("departement", "")


def test_figures_per_age_band_and_household_in_the_order_of_their_labels(campaign, scenario):
    _departements, ages, households = campaign_fairness(campaign)

    assert [row.key for row in ages.rows] == ["60-74", "75+", ""]
    rows = by_key(ages)
    assert figures(rows["60-74"]) == (8, 5, 1, 4, 3, 1, 1, 1, 0)
    assert figures(rows["75+"]) == (4, 4, 1, 3, 2, 0, 1, 0, 1)
    assert figures(rows[""]) == (5, 0, 0, 0, 1, 0, 0, 1, 0)
    assert rows["75+"].label == eligibility.group_label("age_band", "75+")

    assert [row.key for row in households.rows] == ["alone", "children_1_2", ""]
    rows = by_key(households)
    assert figures(rows["alone"]) == (10, 7, 2, 5, 5, 1, 2, 1, 1)
    assert figures(rows["children_1_2"]) == (7, 2, 0, 2, 0, 0, 0, 0, 0)
    assert figures(rows[""]) == (0, 0, 0, 0, 1, 0, 0, 1, 0)


def test_without_a_complete_run_only_proposals_are_counted(campaign):
    propose(campaign, "38", "75+", "alone")

    departements, ages, _households = campaign_fairness(campaign)

    assert departements.run is None
    assert figures(by_key(departements)["38"]) == (0, 0, 0, 0, 1, 0, 0, 1, 0)
    assert [row.key for row in ages.rows] == ["75+"]


# --- through a real run ------------------------------------------------------------------------


def test_fairness_of_a_real_run(funder, agent):
    program = make_program(funder=funder, funded=100_000)
    EligibilityCriterion.objects.create(program=program, kind="departement", values=["38"])
    campaign = campaign_create(program=program, name="Isère", amount=5_000)

    def someone(commune, birth_date=None, size=None, children=None):
        beneficiary = BeneficiaryFactory()
        enrolment = beneficiary_enrol(funder=funder, beneficiary=beneficiary)
        BeneficiaryProfile.objects.create(
            enrolment=enrolment,
            commune=commune,
            birth_date=birth_date,
            household_size=size,
            dependent_children=children,
        )
        return beneficiary

    senior = someone("38185", date(1950, 6, 1), size=1, children=0)  # 75: proposed
    someone("73065", date(1990, 1, 1))  # Savoie: not eligible
    holder = someone("38185")  # holds the aid already
    make_allocation(program=program, beneficiary=holder, amount=1_000)
    parent = someone("38185", date(2000, 1, 1), size=3, children=1)  # 26: proposed, rejected
    today = date(2026, 3, 1)

    campaign_run(campaign=campaign, trigger=Trigger.ON_DEMAND, by=agent, today=today)
    proposal_reject(
        proposal=campaign.proposals.get(beneficiary=parent), by=make_staff(), reason="Non"
    )
    # A later run over one person changes no denominator.
    campaign_run(
        campaign=campaign, trigger=Trigger.DATA_CHANGE, beneficiary_ids=[senior.pk], today=today
    )

    departements, ages, households = campaign_fairness(campaign)

    rows = by_key(departements)
    assert figures(rows["38"]) == (3, 3, 1, 2, 2, 0, 1, 1, 0)
    assert figures(rows["73"]) == (1, 0, 0, 0, 0, 0, 0, 0, 0)
    assert [row.key for row in ages.rows] == ["26-39", "75+", ""]
    rows = by_key(ages)
    assert figures(rows["26-39"]) == (2, 1, 0, 1, 1, 0, 1, 0, 0)
    assert figures(rows["75+"]) == (1, 1, 0, 1, 1, 0, 0, 1, 0)
    assert figures(rows[""]) == (1, 1, 1, 0, 0, 0, 0, 0, 0)
    rows = by_key(households)
    assert figures(rows["alone"])[:5] == (1, 1, 0, 1, 1)
    assert figures(rows["children_1_2"])[:5] == (1, 1, 0, 1, 1)
    assert figures(departements.total)[:5] == (4, 3, 1, 2, 2)
