"""The back office's home: for each funder the user works for, what was funded, granted and
spent, what is left, how much of the aid granted is used, and the programs that need someone's
attention (little money left to grant, an aid no shop accepts, proposals waiting)."""

from dataclasses import dataclass, field

from django.db.models import Count
from django.urls import reverse
from django.utils.translation import gettext

from backoffice.admin.programs import program_shops
from core.money import format_money
from funders import reports
from funders.models import Funder, Program, Proposal
from funders.tenancy import funders_of

FUNDERS_SHOWN = 10
# Less than a tenth of what was funded left to grant: time to fund the program again.
LOW_FLOAT_TENTHS = 1


@dataclass
class Attention:
    program: Program
    url: str
    reasons: list[str]


@dataclass
class FunderHome:
    funder: Funder
    tiles: list[tuple[str, str]]  # (label, value), as the key-figure tiles show them
    attention: list[Attention] = field(default_factory=list)


def _percent(part: int, whole: int) -> str:
    if not whole:
        return "—"
    return f"{part * 100 // whole} %"


def _attention(program: Program, figures: reports.ProgramFigures, waiting: int) -> list[str]:
    reasons = []
    if figures.funded and figures.float_available * 10 < figures.funded * LOW_FLOAT_TENTHS:
        reasons.append(
            gettext("little money left to grant: %(amount)s")
            % {"amount": format_money(figures.float_available, program.currency)}
        )
    if not program_shops(program):
        reasons.append(gettext("no approved shop accepts this aid"))
    if waiting:
        reasons.append(gettext("%(count)d proposal(s) waiting for a decision") % {"count": waiting})
    return reasons


def home_figures(user) -> list[FunderHome]:
    homes = []
    for funder in funders_of(user)[:FUNDERS_SHOWN]:
        programs = list(Program.objects.filter(funder=funder, is_active=True))
        figures = reports.program_figures(programs=programs)
        waiting = dict(
            Proposal.objects.filter(campaign__program__in=programs, status=Proposal.Status.PENDING)
            .values_list("campaign__program")
            .annotate(count=Count("pk"))
        )
        home = FunderHome(funder=funder, tiles=[])
        for currency, total in reports.figures_by_currency(figures.values()).items():
            home.tiles += [
                (gettext("Funded"), format_money(total.funded, currency)),
                (gettext("Granted"), format_money(total.allocated, currency)),
                (gettext("Spent"), format_money(total.spent, currency)),
                (gettext("Left to grant"), format_money(total.float_available, currency)),
                (gettext("Aid used"), _percent(total.spent, total.allocated)),
            ]
        for program in programs:
            reasons = _attention(program, figures[program.pk], waiting.get(program.pk, 0))
            if reasons:
                url = reverse("admin:funders_program_change", args=[program.pk])
                home.attention.append(Attention(program=program, url=url, reasons=reasons))
        homes.append(home)
    return homes
