"""Refusal analysis on the program dashboard: refused payments by reason, shop, kind of shop and
commune, with the amount refused and the people; the CSV/XLSX export; a shop's refused payments
one click away."""

import csv
import io
from datetime import timedelta

import openpyxl
import pytest
from django.urls import reverse
from django.utils import timezone

from engine.request import AuthorizationRequest
from funders import rollups
from funders.models import ProgramRefusal
from funders.reports import Period, refusals_by
from merchants.payments import merchant_place
from tests.factories import BeneficiaryFactory, make_allocation, make_merchant, make_program
from tests.funders.conftest import client_for, export_downloaded
from wallet.authorize import authorize
from wallet.models import Decision

pytestmark = pytest.mark.django_db

FOOD_IN_GRENOBLE = {"categories": {"allow_groups": ["food"]}, "zone": {"communes": ["38185"]}}


def pay(merchant, person, amount):
    return authorize(
        request=AuthorizationRequest(
            amount=amount,
            currency="EUR",
            merchant=merchant_place(merchant),
            at=timezone.now(),
            channel="api",
        ),
        wallet=person.wallet,
        credit_account=merchant.payable_account,
        merchant_id=merchant.pk,
        idempotency_key=f"refusal-{Decision.objects.count()}",
    )


@pytest.fixture
def scenario(funder):
    program = make_program(funder=funder, rules=FOOD_IN_GRENOBLE)
    bar = make_merchant(trade_name="Bar du Cours", mcc="5813")
    outside = make_merchant(
        trade_name="Épicerie d'Échirolles", commune_code="38151", postcode="38130"
    )
    grocer = make_merchant(trade_name="Épicerie du Drac")
    anne, bruno = BeneficiaryFactory(), BeneficiaryFactory()
    for person in (anne, bruno):
        make_allocation(program=program, beneficiary=person, amount=10_000)
    pay(bar, anne, 1_200)
    pay(bar, anne, 800)
    pay(bar, bruno, 500)
    pay(outside, anne, 3_000)
    pay(grocer, anne, 1_000)  # approved
    return program, bar, outside


def period():
    today = timezone.localdate()
    return Period(start=today - timedelta(days=1), end=today)


def test_refusals_by_shop_category_commune_and_reason(scenario):
    program, bar, outside = scenario
    by = refusals_by(program=program, period=period())
    shops = [(line.label, line.payments, line.amount, line.people) for line in by["shop"]]
    assert shops == [("Épicerie d'Échirolles", 1, 3_000, 1), ("Bar du Cours", 3, 2_500, 2)]
    assert [line.merchant_id for line in by["shop"]] == [outside.pk, bar.pk]
    assert [(line.key, line.payments, line.amount, line.people) for line in by["reason"]] == [
        ("outside_zone", 1, 3_000, 1),
        ("merchant_category_not_allowed", 3, 2_500, 2),
    ]
    assert [(line.key, line.amount) for line in by["category"]] == [
        ("food", 3_000),
        ("alcohol_tobacco_betting", 2_500),
    ]
    assert [(line.key, line.payments, line.people) for line in by["commune"]] == [
        ("38151", 1, 1),
        ("38185", 3, 2),
    ]


def test_the_dashboard_links_a_shop_to_its_refused_payments(
    scenario, manager, other_manager, other_funder
):
    program, bar, _outside = scenario
    client = client_for(manager)
    page = client.get(reverse("admin:funders_programdashboard_change", args=[program.pk]))
    assert page.status_code == 200
    by_shop = next(t for t in page.context["refusals"] if t["dimension"] == "shop")
    [link] = [line[4] for line in by_shop["lines"] if line[0] == "Bar du Cours"]
    listed = client.get(link)
    assert listed.status_code == 200
    shown = {decision.pk for decision in listed.context["cl"].result_list}
    assert shown == set(
        Decision.objects.filter(merchant=bar, status="declined").values_list("pk", flat=True)
    )
    assert len(shown) == 3
    # Someone another funder helps, refused at the same bar: not among them.
    stranger = BeneficiaryFactory()
    theirs_program = make_program(funder=other_funder, rules=FOOD_IN_GRENOBLE)
    make_allocation(program=theirs_program, beneficiary=stranger)
    theirs = pay(bar, stranger, 900)
    assert theirs.status == "declined"
    again = {decision.pk for decision in client.get(link).context["cl"].result_list}
    assert again == shown
    dashboard = reverse("admin:funders_programdashboard_change", args=[program.pk])
    assert client_for(other_manager).get(dashboard).status_code == 404


@pytest.mark.parametrize("file_format", ["csv", "xlsx"])
def test_the_refusals_export(scenario, manager, file_format):
    program, _bar, _outside = scenario
    today = timezone.localdate()
    period = {"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()}
    response, content = export_downloaded(
        client_for(manager), program, "refusals", file_format, period
    )
    assert response.status_code == 200
    if file_format == "csv":
        rows = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    else:
        sheet = openpyxl.load_workbook(io.BytesIO(content), read_only=True).active
        rows = [["" if cell is None else str(cell) for cell in row] for row in sheet.values]
    # The same figures in both formats, the amount in euros and in cents.
    shops = [row for row in rows[1:] if row[1] == "Bar du Cours"]
    assert [row[2:] for row in shops] == [["3", "25.00", "2500", "2"]]


def test_refusals_are_the_same_read_from_the_rollup_or_after_its_watermark(scenario, funder):
    program, bar, _outside = scenario
    before = refusals_by(program=program, period=period())
    # someone of another program refused at the same bar: not among them
    other = make_program(funder=funder, rules=FOOD_IN_GRENOBLE)
    stranger = BeneficiaryFactory()
    make_allocation(program=other, beneficiary=stranger, amount=10_000)
    assert pay(bar, stranger, 700).status == "declined"
    assert refusals_by(program=program, period=period()) == before

    # folded a few decisions at a time, then a refusal after the watermark
    rollups.rollup_fold(settle=timedelta(0), chunk=2)
    assert ProgramRefusal.objects.filter(program=program).count() == 4
    assert ProgramRefusal.objects.filter(program=other).count() == 1
    assert refusals_by(program=program, period=period()) == before
    pay(bar, program.allocations.first().beneficiary, 100)
    after = refusals_by(program=program, period=period())
    assert [(line.payments, line.amount) for line in after["shop"]] == [(1, 3_000), (4, 2_600)]
    rollups.rollup_fold(settle=timedelta(0))
    assert refusals_by(program=program, period=period()) == after
    # and outside the period, none
    yesterday = period().start
    assert refusals_by(program=program, period=Period(start=yesterday, end=yesterday)) == {
        dimension: [] for dimension in ("reason", "shop", "category", "commune")
    }
