"""Proactive aid in a real browser, in French: a manager writes a program's eligibility criteria
and runs a campaign; an agent reviews what it proposes (accepts one for another amount, rejects
one with a reason, accepts the rest at once) and reads who the campaign reaches."""

from datetime import date

import pytest
from django.utils import translation
from playwright.sync_api import expect

from funders import eligibility
from funders.campaigns import profile_save
from funders.models import (
    Allocation,
    Campaign,
    CampaignRun,
    EligibilityCriterion,
    Membership,
    Proposal,
)
from funders.services import beneficiary_enrol
from tests.browser.signin import admin_sign_in
from tests.factories import BeneficiaryFactory, FunderFactory, make_program, make_staff

pytestmark = pytest.mark.django_db(transaction=True)

# Who the funder knows: (first name, last name, profile). Four are 65 or more and live in Isère.
PEOPLE = [
    (
        "Jeanne",
        "Bernard",
        {"postcode": "38000", "birth_date": date(1946, 3, 10), "household_size": 1},
    ),
    (
        "Paul",
        "Dupont",
        {
            "commune": "38185",
            "birth_date": date(1957, 9, 2),
            "household_size": 2,
            "dependent_children": 0,
        },
    ),
    (
        "Odette",
        "Moreau",
        {
            "postcode": "38100",
            "birth_date": date(1953, 1, 20),
            "household_size": 4,
            "dependent_children": 2,
        },
    ),
    (
        "Lucien",
        "Petit",
        {"postcode": "38400", "birth_date": date(1940, 6, 15), "household_size": 1},
    ),
    # too young
    ("Inès", "Garcia", {"postcode": "38000", "birth_date": date(1990, 4, 4), "household_size": 3}),
    # in Savoie
    (
        "Marcel",
        "Lefebvre",
        {"postcode": "73000", "birth_date": date(1950, 11, 30), "household_size": 1},
    ),
]


@pytest.fixture
def isere():
    """The Département de l'Isère, its manager Claire, its agent Karim, a funded program and six
    people it helps, with what it knows of them."""
    funder = FunderFactory(name="Département de l'Isère")
    make_staff(funder=funder, role=Membership.Role.MANAGER, username="claire", first_name="Claire")
    karim = make_staff(
        funder=funder, role=Membership.Role.AGENT, username="karim", first_name="Karim"
    )
    program = make_program(funder=funder, funded=100_000)  # 1 000 €
    people = {}
    for index, (first_name, last_name, profile) in enumerate(PEOPLE, start=1):
        person = BeneficiaryFactory(
            first_name=first_name, last_name=last_name, postcode=profile.get("postcode", "38000")
        )
        enrolment = beneficiary_enrol(
            funder=funder, beneficiary=person, reference=f"ISR-{index:04d}"
        )
        profile_save(enrolment=enrolment, data=profile, reevaluate=False)
        people[last_name] = person
    return program, karim, people


def in_french(function, *args) -> str:
    with translation.override("fr"):
        return function(*args)


def test_a_manager_runs_a_campaign_and_an_agent_decides_on_its_proposals(
    live_server, page, isere, screenshot, settings
):
    # given: the run's task runs in the live server's request, once its transaction commits
    settings.CELERY_TASK_ALWAYS_EAGER = True
    program, karim, people = isere
    admin = f"{live_server.url}/admin"

    # the manager writes the criteria in the program page's inline: 65 or more, in Isère
    admin_sign_in(page, admin, "claire")
    page.goto(f"{admin}/funders/program/{program.pk}/change/")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    add_criterion = page.locator("#criteria-group .add-row a")
    add_criterion.click()
    page.select_option("select[name='criteria-0-kind']", "age")
    page.fill("input[name='criteria-0-minimum']", "65")
    add_criterion.click()
    page.select_option("select[name='criteria-1-kind']", "departement")
    page.fill("input[name='criteria-1-values']", "38")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist .success")).to_be_visible()
    expect(page.locator(".errornote")).to_have_count(0)

    criteria = list(EligibilityCriterion.objects.filter(program=program).order_by("pk"))
    assert [(c.kind, c.minimum, c.values) for c in criteria] == [
        ("age", 65, []),
        ("departement", None, ["38"]),
    ]
    # the page says them in words
    inline = page.locator("#criteria-group")
    for criterion in criteria:
        expect(inline).to_contain_text(in_french(eligibility.describe, criterion))
    expect(inline).to_contain_text("Isère (38)")
    screenshot(page, "proactive-1-criteria")

    # she creates a campaign: 80 € to each, nothing added per child
    page.goto(f"{admin}/funders/campaign/add/")
    page.select_option("#id_program", str(program.pk))
    page.fill("#id_name", "Seniors isérois 2026")
    page.fill("#id_amount", "80")
    page.click("input[name=_continue]")
    expect(page.locator(".messagelist .success")).to_be_visible()
    campaign = Campaign.objects.get(name="Seniors isérois 2026")
    assert (campaign.program, campaign.amount, campaign.amount_per_child) == (program, 8_000, 0)

    # and runs it now
    page.locator("form[action$='/run/'] button[type=submit]").click()
    expect(page.locator(".messagelist .success")).to_be_visible()
    run = None
    for _attempt in range(10):  # the run is made in the request; reload until it is shown
        run = CampaignRun.objects.filter(campaign=campaign).first()
        if run is not None and run.status == CampaignRun.Status.DONE:
            break
        page.wait_for_timeout(500)
        page.reload()
    assert run is not None
    assert (run.status, run.trigger, run.started_by.username) == (
        CampaignRun.Status.DONE,
        CampaignRun.Trigger.ON_DEMAND,
        "claire",
    )
    assert (run.evaluated, run.eligible, run.already_holding, run.proposed, run.withdrawn) == (
        6,
        4,
        0,
        4,
        0,
    )
    page.reload()
    # the runs table: evaluated, eligible, already holding, proposed, withdrawn
    expect(page.locator(".campaign-runs tbody tr").first.locator("td.number")).to_have_text(
        ["6", "4", "0", "4", "0"]
    )
    proposals = {
        p.beneficiary.last_name: p for p in campaign.proposals.select_related("beneficiary")
    }
    assert set(proposals) == {"Bernard", "Dupont", "Moreau", "Petit"}
    assert {p.amount for p in proposals.values()} == {8_000}

    # the agent signs in (the manager signs out first)
    page.click("#logout-form button[type=submit]")
    admin_sign_in(page, admin, "karim")

    # opens the campaign's proposals, then Jeanne Bernard's
    page.goto(f"{admin}/funders/campaign/{campaign.pk}/change/")
    expect(page.locator("form[action$='/run/']")).to_have_count(0)  # managers run campaigns
    page.click(f"a[href='/admin/funders/proposal/?campaign__id__exact={campaign.pk}']")
    expect(page.locator("#result_list tbody tr")).to_have_count(4)
    page.locator("#result_list a", has_text="Jeanne Bernard").click()

    # the review page lists the criteria met, in words
    bernard = proposals["Bernard"]
    why = page.locator(".review section.module").nth(1)
    assert len(bernard.reasons) == 2
    for reason in bernard.reasons:
        expect(why).to_contain_text(in_french(eligibility.explain, reason))
    expect(why).to_contain_text("Isère (38)")
    expect(page.locator("#id_accept-amount")).to_have_value("80,00")
    screenshot(page, "proactive-2-review")

    # she grants 60 € instead of 80 €
    page.fill("#id_accept-amount", "60")
    page.click("input[name=_accept]")
    expect(page.locator(".messagelist .success")).to_contain_text("60,00")
    expect(page.locator("input[name=_accept]")).to_have_count(0)  # decided: no more buttons
    bernard.refresh_from_db()
    assert (bernard.status, bernard.granted_amount, bernard.decided_by) == (
        Proposal.Status.ACCEPTED,
        6_000,
        karim,
    )
    allocation = Allocation.objects.get(program=program, beneficiary=people["Bernard"])
    assert (allocation.amount, allocation.status) == (6_000, Allocation.Status.ACTIVE)
    assert bernard.allocation == allocation

    # she rejects Paul Dupont's, with a reason
    page.goto(f"{admin}/funders/proposal/?campaign__id__exact={campaign.pk}")
    page.locator("#result_list a", has_text="Paul Dupont").click()
    page.fill("#id_reject-reason", "Déjà aidé par le CCAS")
    page.click("input[name=_reject]")
    expect(page.locator(".messagelist .success")).to_contain_text("Paul Dupont")
    expect(page.locator(".review")).to_contain_text("Déjà aidé par le CCAS")
    dupont = proposals["Dupont"]
    dupont.refresh_from_db()
    assert (dupont.status, dupont.decision_reason, dupont.decided_by) == (
        Proposal.Status.REJECTED,
        "Déjà aidé par le CCAS",
        karim,
    )
    assert not Allocation.objects.filter(beneficiary=people["Dupont"]).exists()

    # she selects the two still waiting and accepts them at once
    page.goto(f"{admin}/funders/proposal/?campaign__id__exact={campaign.pk}")
    rest = [proposals["Moreau"], proposals["Petit"]]
    for proposal in rest:
        page.check(f"input[name=_selected_action][value='{proposal.pk}']")
    page.select_option("select[name=action]", "accept_selected")
    page.click("button[name=index]")
    expect(page.locator(".messagelist .success")).to_contain_text("2")
    expect(page.locator(".messagelist .error")).to_have_count(0)
    expect(page.locator(".messagelist .warning")).to_have_count(0)
    for proposal in rest:
        proposal.refresh_from_db()
        assert (proposal.status, proposal.granted_amount, proposal.decided_by) == (
            Proposal.Status.ACCEPTED,
            8_000,
            karim,
        )
        assert proposal.allocation.amount == 8_000
    granted = Allocation.objects.filter(program=program)
    assert sorted(granted.values_list("amount", flat=True)) == [6_000, 8_000, 8_000]
    assert campaign.proposals.filter(status=Proposal.Status.PENDING).count() == 0

    # she opens the campaign's fairness view: one table per dimension
    page.goto(f"{admin}/funders/campaign/{campaign.pk}/change/")
    page.click(f"a[href='/admin/funders/campaign/{campaign.pk}/fairness/']")
    tables = page.locator(".fairness table")
    expect(tables).to_have_count(3)
    by_departement, by_age, by_household = (tables.nth(i) for i in range(3))
    expect(by_departement).to_contain_text("Isère (38)")
    expect(by_departement).to_contain_text("Savoie (73)")
    for key in ("75+", "60-74", "26-39"):
        expect(by_age).to_contain_text(in_french(eligibility.group_label, "age_band", key))
    for key in ("alone", "no_children", "children_1_2"):
        expect(by_household).to_contain_text(
            in_french(eligibility.group_label, "household_type", key)
        )
    # Isère: 5 evaluated, 4 eligible (80 %), none holding, 4 proposed, 3 accepted, 1 rejected
    isere_row = by_departement.locator("tbody tr", has_text="Isère (38)")
    expect(isere_row.locator("td")).to_have_text(
        ["5", "4", "80 %", "0", "0 %", "4", "4", "3", "1", "25 %", "0", "0"],
        use_inner_text=True,
    )
    expect(page.locator(".fairness svg").first).to_be_visible()
    path = screenshot(page, "proactive-3-fairness")
    assert path.stat().st_size > 10_000
