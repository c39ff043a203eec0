"""The figures of the dashboards and the exports, exact to the cent, on one program's life:
funded twice, four grants, payments captured and refunded, one held, three refused by the
rules, one grant revoked and one expired; another funder's program pays at the same shop."""

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.utils import translation

from backoffice import exports
from engine.codes import REASONS
from funders import reports
from funders.models import Allocation, Program
from funders.services import (
    allocation_expire,
    allocation_revoke,
    beneficiary_enrol,
    program_fund,
)
from ledger.models import Transfer
from merchants.models import Merchant
from merchants.payments import payment_authorize, payment_refund, payment_reverse
from tests.factories import (
    BeneficiaryFactory,
    make_allocation,
    make_merchant,
    make_payment_code,
    make_program,
    make_staff,
)
from tests.markers import postgresql_only
from wallet.models import Beneficiary, Card, Decision, Wallet

PARIS = ZoneInfo("Europe/Paris")
RULES = {
    "categories": {"allow_groups": ["food", "health"]},
    "zone": {"departements": ["38", "73"]},
}
PERIOD = reports.Period(start=date(2026, 3, 1), end=date(2026, 3, 12))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=PARIS)


@dataclass
class Scenario:
    program: Program
    small_program: Program
    other_program: Program
    grocer: Merchant
    pharmacy: Merchant
    script_shop: Merchant


def build_scenario(*, funder, other_funder, time_machine) -> Scenario:
    """Build the life of the program in March 2026 (Europe/Paris)."""
    time_machine.move_to(at(2, 9), tick=False)
    grocer = make_merchant(trade_name="Épicerie du marché", mcc="5411")
    pharmacy = make_merchant(
        trade_name="Pharmacie de Savoie",
        mcc="5912",
        postcode="73000",
        city="Chambéry",
        commune_code="73065",
        latitude="45.56628",
        longitude="5.92079",
    )
    script_shop = make_merchant(trade_name="<script>alert(1)</script>", mcc="5411")
    bar = make_merchant(trade_name="Bar des sports", mcc="5813")
    parisian = make_merchant(
        trade_name="Supérette parisienne",
        mcc="5411",
        postcode="75001",
        city="Paris",
        commune_code="75101",
        latitude="48.86",
        longitude="2.34",
    )

    program = make_program(funder=funder, funded=60_000, rules=RULES)
    program_fund(
        program=program, amount=40_000, idempotency_key="second-funding", reference="VIR-0326"
    )
    small_program = make_program(funder=funder, funded=5_000)
    other_program = make_program(funder=other_funder, funded=50_000, rules=RULES)

    def grant(amount: int, program=program, **window):
        allocation = make_allocation(
            program=program, beneficiary=BeneficiaryFactory(), amount=amount, **window
        )
        return allocation, allocation.beneficiary.wallet

    _alice, alice_wallet = grant(20_000)
    _bob, bob_wallet = grant(15_000)
    carol, carol_wallet = grant(10_000)
    dan, dan_wallet = grant(5_000, valid_from=at(1, 9), valid_until=at(10, 0))
    _eve, eve_wallet = grant(30_000, program=other_program)

    keys = iter(range(1000))

    def pay(merchant, wallet, amount, *, capture=True) -> Decision:
        return payment_authorize(
            merchant=merchant,
            amount=amount,
            currency="EUR",
            payment_code=make_payment_code(wallet),
            capture=capture,
            idempotency_key=f"pay-{next(keys)}",
        )

    time_machine.move_to(at(2, 10), tick=False)
    alice_first = pay(grocer, alice_wallet, 3_000)
    pay(script_shop, alice_wallet, 700)
    pay(grocer, eve_wallet, 999)

    time_machine.move_to(at(3, 11), tick=False)
    pay(pharmacy, bob_wallet, 2_550)
    payment_refund(merchant=grocer, decision=alice_first, amount=500, idempotency_key="ref-1")

    time_machine.move_to(at(4, 12), tick=False)
    for merchant, wallet in ((bar, bob_wallet), (bar, carol_wallet), (parisian, bob_wallet)):
        assert pay(merchant, wallet, 1_000).status == Decision.Status.DECLINED
    assert pay(bar, eve_wallet, 1_000).status == Decision.Status.DECLINED

    time_machine.move_to(at(5, 15), tick=False)
    carol_payment = pay(grocer, carol_wallet, 1_000)

    # 00:30 in Paris is still the 5th in UTC: the payment belongs to the 6th.
    time_machine.move_to(at(6, 0, 30), tick=False)
    pay(pharmacy, dan_wallet, 800)

    time_machine.move_to(at(7, 10), tick=False)
    allocation_revoke(allocation=carol, reason="Moved to another département")

    time_machine.move_to(at(8, 10), tick=False)
    # The aid has ended: the refund goes back to the program, not to the pocket.
    payment_refund(merchant=grocer, decision=carol_payment, amount=400, idempotency_key="ref-2")

    time_machine.move_to(at(9, 10), tick=False)
    pay(grocer, alice_wallet, 1_200, capture=False)

    time_machine.move_to(at(11, 10), tick=False)
    dan.refresh_from_db()
    allocation_expire(allocation=dan)

    time_machine.move_to(at(12, 18), tick=False)
    return Scenario(
        program=Program.objects.get(pk=program.pk),
        small_program=Program.objects.get(pk=small_program.pk),
        other_program=Program.objects.get(pk=other_program.pk),
        grocer=grocer,
        pharmacy=pharmacy,
        script_shop=script_shop,
    )


@pytest.fixture
def scenario(funder, other_funder, time_machine) -> Scenario:
    return build_scenario(funder=funder, other_funder=other_funder, time_machine=time_machine)


@pytest.fixture
def english():
    with translation.override("en"):
        yield


def figures_of(program: Program) -> reports.ProgramFigures:
    return reports.program_figures(programs=[program])[program.pk]


# --- where the money is ---------------------------------------------------------------------------


def test_program_figures_are_exact_to_the_cent(scenario):
    figures = figures_of(scenario.program)

    assert figures == reports.ProgramFigures(
        currency="EUR",
        funded=100_000,
        allocated=50_000,
        captured=3_000 + 700 + 2_550 + 1_000 + 800,
        refunded=500 + 400,
        held=1_200,
        float_available=100_000 - 50_000 + 9_000 + 400 + 4_200,
        in_pockets=(20_000 - 3_000 - 700 + 500 - 1_200) + (15_000 - 2_550),
        expired_returned=5_000 - 800,
        revoked_returned=10_000 - 1_000,
        not_yet_returned=0,
    )
    assert figures.spent == 7_150


def test_funded_equals_where_the_money_is(scenario):
    figures = figures_of(scenario.program)

    assert figures.funded == (
        figures.float_available
        + figures.in_pockets
        + figures.held
        + figures.spent
        + figures.not_yet_returned
    )


def test_money_left_on_an_ended_pocket_counts_until_it_is_swept(funder):
    # given an allocation revoked while a payment held part of it, then released
    allocation = make_allocation(program=make_program(funder=funder), amount=10_000)
    payment = payment_authorize(
        merchant=make_merchant(),
        amount=3_000,
        currency="EUR",
        payment_code=make_payment_code(allocation.beneficiary.wallet),
    )
    allocation_revoke(allocation=allocation)
    payment_reverse(merchant=payment.merchant, decision=payment, idempotency_key="rev")

    # when
    figures = figures_of(allocation.program)

    # then the released 30 € wait on the ended pocket for the next sweep
    assert figures.not_yet_returned == 3_000
    assert figures.revoked_returned == 7_000
    assert figures.funded == (
        figures.float_available + figures.in_pockets + figures.held + figures.spent + 3_000
    )


def test_a_card_capture_without_a_hold_counts_as_spent_and_beyond_the_pockets_as_owed(funder):
    # given a pocket of 100 € and a card the network charges 150 € with no authorization of ours
    from stripe_issuing.transactions import transaction_event_apply
    from tests.stripe_issuing import stripe_events

    allocation = make_allocation(program=make_program(funder=funder, funded=50_000), amount=10_000)
    card = Card.objects.create(
        wallet=allocation.beneficiary.wallet,
        kind="virtual",
        status="active",
        stripe_card_id="ic_1ForceCapture",
    )
    txn = stripe_events.transaction(
        card=card.stripe_card_id, type="capture", amount=15_000, authorization=None
    )

    # when the capture arrives
    transaction_event_apply(event=stripe_events.event("issuing_transaction.created", txn))

    # then all of it is spent, the 50 € beyond the pocket are owed, and the identity holds
    figures = figures_of(allocation.program)
    assert figures.spent == 15_000
    assert figures.receivable == 5_000
    assert figures.in_pockets == 0
    assert figures.funded == (
        figures.float_available
        + figures.in_pockets
        + figures.held
        + figures.spent
        + figures.not_yet_returned
        - figures.receivable
    )


def test_funder_totals_add_up_its_programs_per_currency(scenario):
    programs = [scenario.program, scenario.small_program]

    totals = reports.figures_by_currency(reports.program_figures(programs=programs).values())

    assert list(totals) == ["EUR"]
    assert totals["EUR"].funded == 105_000
    assert totals["EUR"].float_available == figures_of(scenario.program).float_available + 5_000
    assert totals["EUR"].spent == 7_150


def test_figures_take_a_fixed_number_of_queries(scenario, django_assert_num_queries):
    programs = list(Program.objects.all())
    assert len(programs) == 3

    # The floats, the watermark, the rollup, the five kinds of flow after the watermark, what
    # ended aid keeps in the pockets that kept some at the last fold and in those moved after it
    # (by entries, holds and releases: four), and the savepoint around them (begun and released).
    with django_assert_num_queries(14):
        reports.program_figures(programs=programs)


# --- spending over the period --------------------------------------------------------------------


def test_spending_by_category_uses_the_named_groups(scenario, english):
    assert reports.spending_by_category(program=scenario.program, period=PERIOD) == [
        ("Food shops", 3_000 + 700 - 500 + 1_000 - 400),
        ("Pharmacies and health care", 2_550 + 800),
    ]


def test_a_category_outside_the_groups_gets_its_iso_name():
    assert reports.category_label("7011") == "Lodging -- hotels, motels and resorts (7011)"


def test_spending_by_merchant(scenario):
    assert reports.spending_by_merchant(program=scenario.program, period=PERIOD) == [
        ("Pharmacie de Savoie", 3_350),
        ("Épicerie du marché", 3_000 - 500 + 1_000 - 400),
        ("<script>alert(1)</script>", 700),
    ]


def test_spending_by_departement_of_the_shop(scenario):
    assert reports.spending_by_departement(program=scenario.program, period=PERIOD) == [
        ("Isère (38)", 3_800),
        ("Savoie (73)", 3_350),
    ]


def test_spending_day_by_day_in_paris_time(scenario):
    days = dict(reports.spending_over_time(program=scenario.program, period=PERIOD))

    assert list(days) == [date(2026, 3, day) for day in range(1, 13)]
    assert {day.day: amount for day, amount in days.items() if amount} == {
        2: 3_700,
        3: 2_550 - 500,
        5: 1_000,
        6: 800,
        8: -400,
    }


def test_spending_month_by_month_over_a_long_period(scenario):
    period = reports.Period(start=date(2026, 1, 15), end=date(2026, 4, 30))

    months = reports.spending_over_time(program=scenario.program, period=period)

    assert period.by_month
    assert months == [
        (date(2026, 1, 1), 0),
        (date(2026, 2, 1), 0),
        (date(2026, 3, 1), 7_150),
        (date(2026, 4, 1), 0),
    ]


def test_spending_outside_the_period_is_left_out(scenario):
    period = reports.Period(start=date(2026, 3, 4), end=date(2026, 3, 7))

    assert reports.spending_by_merchant(program=scenario.program, period=period) == [
        ("Épicerie du marché", 1_000),
        ("Pharmacie de Savoie", 800),
    ]


def test_another_funders_spending_is_its_own(scenario):
    assert reports.spending_by_merchant(program=scenario.other_program, period=PERIOD) == [
        ("Épicerie du marché", 999)
    ]


def test_declines_are_counted_by_the_reason_of_the_programs_pocket(scenario):
    assert reports.declines_by_reason(program=scenario.program, period=PERIOD) == [
        ("merchant_category_not_allowed", 2),
        ("outside_zone", 1),
    ]
    assert reports.declines_by_reason(program=scenario.other_program, period=PERIOD) == [
        ("merchant_category_not_allowed", 1)
    ]


def test_every_reason_code_has_a_label_for_the_funder():
    assert set(REASONS) - {"approved"} == set(reports.REASON_LABELS)


def test_default_period_is_the_last_ninety_days():
    period = reports.Period.default(today=date(2026, 3, 31))

    assert (period.start, period.end) == (date(2026, 1, 1), date(2026, 3, 31))
    assert period.by_month
    assert period.since == datetime(2026, 1, 1, tzinfo=PARIS)
    assert period.until == datetime(2026, 4, 1, tzinfo=PARIS)


# --- exports ----------------------------------------------------------------------------------


def read_csv(content: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8-sig"))))


def read_xlsx(content: bytes) -> list[dict]:
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    header, *rows = sheet.iter_rows(values_only=True)
    return [dict(zip(header, row, strict=True)) for row in rows]


def export(program, kind, file_format="csv"):
    return exports.program_export(
        program=program, kind=kind, file_format=file_format, period=PERIOD
    )


def test_allocations_export(scenario, english):
    first = scenario.program.allocations.order_by("pk").first()
    beneficiary_enrol(
        funder=scenario.program.funder, beneficiary=first.beneficiary, reference="DOS-42"
    )
    clerk = make_staff(first_name="Lucie", last_name="Martin")
    Allocation.objects.filter(pk=first.pk).update(created_by=clerk)

    filename, content_type, content = export(scenario.program, "allocations")

    rows = read_csv(content)
    assert (
        filename == f"{scenario.program.name.lower().replace(' ', '-')}-allocations-2026-03-12.csv"
    )
    assert content_type == "text/csv"
    assert [(r["amount"], r["amount (cents)"], r["status"]) for r in rows] == [
        ("200.00", "20000", "Active"),
        ("150.00", "15000", "Active"),
        ("100.00", "10000", "Revoked"),
        ("50.00", "5000", "Expired"),
    ]
    assert (rows[0]["beneficiary"], rows[0]["file number"], rows[0]["created by"]) == (
        str(first.beneficiary),
        "DOS-42",
        "Lucie Martin",
    )
    assert (rows[1]["file number"], rows[1]["created by"]) == ("", "")
    assert rows[2]["reason"] == "Moved to another département"
    assert rows[3]["valid until"] == "2026-03-10 00:00"
    assert rows[2]["ended at"] == "2026-03-07 10:00"
    assert sum(int(r["amount (cents)"]) for r in rows) == figures_of(scenario.program).allocated


@postgresql_only
@pytest.mark.parametrize("language", ["en", "fr"])
def test_allocations_csv_from_copy_is_the_resource_file_byte_for_byte(scenario, language):
    """On PostgreSQL the allocations CSV is written by COPY; it must be the very file
    django-import-export writes, awkward cells included."""
    first, second, *_ = scenario.program.allocations.order_by("pk")
    Beneficiary.objects.filter(pk=first.beneficiary_id).update(
        first_name="=SUM(A1)", last_name='O"Brien, Jr'
    )
    beneficiary_enrol(funder=scenario.program.funder, beneficiary=first.beneficiary, reference="-7")
    login_only = make_staff(first_name="", last_name="", username="+clerk")
    Allocation.objects.filter(pk=first.pk).update(
        created_by=login_only, end_reason='line one\nline two; "quoted"', amount=5
    )
    Allocation.objects.filter(pk=second.pk).update(created_by=make_staff(first_name="Zoé"))

    with translation.override(language):
        from_copy = export(scenario.program, "allocations")[2]
        dataset = exports.EXPORTS["allocations"](scenario.program, PERIOD)
        from_resource = ("\ufeff" + exports.FORMATS["csv"].export_data(dataset)).encode()

    assert b"=SUM" in from_copy and b"\r\n" in from_copy  # the awkward cells are there
    assert from_copy == from_resource


def paid_at_grocer_named(scenario, trade_name: str) -> None:
    """A payment of 1 € of the program's aid, at its grocer renamed `trade_name`."""
    Merchant.objects.filter(pk=scenario.grocer.pk).update(trade_name=trade_name)
    wallet = Wallet.objects.filter(pockets__allocation__program=scenario.program).first()
    payment_authorize(
        merchant=Merchant.objects.get(pk=scenario.grocer.pk),
        amount=100,
        currency="EUR",
        payment_code=make_payment_code(wallet),
    )


@postgresql_only
@pytest.mark.parametrize("language", ["en", "fr"])
def test_payments_csv_from_copy_is_the_resource_file_byte_for_byte(scenario, language):
    """The payments CSV too: refused, partly refunded and formula-like shops included."""
    paid_at_grocer_named(scenario, '=Épicerie "du", marché')

    with translation.override(language):
        from_copy = export(scenario.program, "payments")[2]
        dataset = exports.EXPORTS["payments"](scenario.program, PERIOD)
        from_resource = ("\ufeff" + exports.FORMATS["csv"].export_data(dataset)).encode()

    assert len(from_copy.splitlines()) == 11  # the header, the nine payments and this one
    assert from_copy == from_resource


def test_payments_export_matches_the_figures(scenario, english):
    rows = read_csv(export(scenario.program, "payments")[2])
    figures = figures_of(scenario.program)

    assert len(rows) == 9
    assert sum(int(r["captured (cents)"]) for r in rows) == figures.captured
    assert sum(int(r["refunded (cents)"]) for r in rows) == figures.refunded
    assert sum(int(r["approved from this program (cents)"]) for r in rows) == 9_250
    first = rows[0]
    assert (first["date"], first["merchant"], first["merchant category code"]) == (
        "2026-03-02 10:00",
        "Épicerie du marché",
        "5411",
    )
    assert (first["amount asked"], first["captured"], first["refunded"]) == (
        "30.00",
        "30.00",
        "5.00",
    )
    refused = [r for r in rows if r["status"] == "Declined"]
    assert [r["refused by this program's rules"] for r in refused] == [
        "Kind of shop not allowed",
        "Kind of shop not allowed",
        "Shop outside the area allowed",
    ]
    assert {r["approved from this program"] for r in refused} == {"0.00"}


def test_payments_export_neutralises_formulas_in_names(scenario, english):
    paid_at_grocer_named(scenario, "=HYPERLINK(1)")

    rows = read_csv(export(scenario.program, "payments")[2])

    assert rows[-1]["merchant"] == "'=HYPERLINK(1)"


def test_statement_runs_to_the_balance_of_the_program(scenario, english):
    rows = read_csv(export(scenario.program, "statement")[2])

    assert [(r["kind"], r["amount (cents)"]) for r in rows] == [
        ("Program funding", "60000"),
        ("Program funding", "40000"),
        ("Allocation", "-20000"),
        ("Allocation", "-15000"),
        ("Allocation", "-10000"),
        ("Allocation", "-5000"),
        ("Revocation", "9000"),
        ("Refund", "400"),
        ("Aid expiry", "4200"),
    ]
    assert rows[1]["reference"] == "VIR-0326"
    assert rows[-1]["balance"] == "636.00"
    assert int(rows[-1]["balance (cents)"]) == scenario.program.float_account.balance
    refund = Transfer.objects.get(kind=Transfer.Kind.REFUND, entries__amount=400)
    decision = refund.refund_of.pending_transfer.decision_hold.decision
    assert rows[7]["reference"] == decision.reference


def test_statement_of_a_later_period_starts_from_the_balance_before_it(scenario):
    period = reports.Period(start=date(2026, 3, 8), end=date(2026, 3, 12))

    rows = reports.program_statement(program=scenario.program, period=period)

    assert [(row.amount, row.balance) for row in rows] == [(400, 59_400), (4_200, 63_600)]


@pytest.mark.parametrize("kind", exports.KINDS)
def test_xlsx_export_holds_the_same_rows_as_csv(scenario, kind):
    from_csv = read_csv(export(scenario.program, kind, "csv")[2])
    filename, content_type, content = export(scenario.program, kind, "xlsx")

    from_xlsx = read_xlsx(content)
    assert filename.endswith(".xlsx")
    assert content_type.startswith("application/vnd.openxmlformats")
    assert [{k: "" if v is None else str(v) for k, v in row.items()} for row in from_xlsx] == (
        from_csv
    )


def test_amounts_in_files_are_decimal_strings():
    assert exports.decimal_text(1250, "EUR") == "12.50"
    assert exports.decimal_text(-5, "EUR") == "-0.05"
    assert exports.decimal_text(100_000_000_01, "EUR") == "100000000.01"
    assert exports.decimal_text(1250, "XPF") == "1250"
