"""Dashboards: the funder's (every program, where the money is) as the changelist of
ProgramDashboard, a program's (figures, spending over a period, declined payments, exports) as
its change page. Charts are SVG drawn on the server by pygal, each followed by a table of the
same figures, which is what screen readers use."""

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from math import ceil

import pygal
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.http import FileResponse, Http404, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.html import format_html
from django.utils.http import urlencode
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from pygal.style import Style

from backoffice import exports
from backoffice.admin.scoping import FunderScopedAdmin
from core.money import format_money
from core.replica import replica_reads
from funders import nonuse, reports
from funders.models import Funder, Program, ProgramDashboard, ProgramExport
from funders.tenancy import Role, funders_of

MAX_BARS = 20  # bars of a breakdown; the rest is summed in one "other" bar
RECENT_EXPORTS = 10  # files listed on a program's dashboard, newest first
EXPORT_LABELS = {
    "allocations": _("Allocations"),
    "payments": _("Payments of the period"),
    "statement": _("Statement of the program's account for the period"),
    "refusals": _("Refused payments of the period, by reason, shop and place"),
}


def _today() -> date:
    return timezone.localdate(timezone=reports.PARIS)


class PeriodForm(forms.Form):
    """?from=YYYY-MM-DD&to=YYYY-MM-DD, both optional: by default the last 90 days up to today.
    A long period is read month by month, but its declined payments are read one by one: three
    years at most."""

    EARLIEST = date(2000, 1, 1)
    LATEST = date(2099, 12, 31)
    MAX_DAYS = 3 * 366

    def __init__(self, data):
        super().__init__(data)
        # "from" is a Python keyword, so the fields cannot be class attributes.
        for name, label in (("from", _("From")), ("to", _("To"))):
            self.fields[name] = forms.DateField(
                label=label,
                required=False,
                input_formats=["%Y-%m-%d"],
                validators=[MinValueValidator(self.EARLIEST), MaxValueValidator(self.LATEST)],
                widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            )

    def clean(self) -> dict:
        data = super().clean()
        if self.errors:
            return data
        end = data.get("to") or _today()
        start = data.get("from") or end - timedelta(days=reports.DEFAULT_DAYS - 1)
        if start > end:
            raise ValidationError(
                _("The start of the period must come before its end."), code="period_reversed"
            )
        if (end - start).days >= self.MAX_DAYS:
            raise ValidationError(
                _("Choose a period of three years at most."), code="period_too_long"
            )
        data["period"] = reports.Period(start=start, end=end)
        return data


# --- charts ---------------------------------------------------------------------------------------

_STYLE = Style(
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    background="transparent",
    plot_background="transparent",
    colors=("#417690",),  # the admin's own blue
    title_font_size=18,
    label_font_size=13,
    major_label_font_size=13,
    value_font_size=13,
    tooltip_font_size=14,
)
# pygal writes its settings in an inline script for its interactive mode, whose code would come
# from a CDN: the charts stay static and the page never runs or fetches anything for them.
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL)
# ...and hides the tooltip that script would fill by a style attribute, which the
# Content-Security-Policy refuses (the tooltip is empty: there is nothing to hide).
_TOOLTIP_STYLE = ' style="opacity: 0"'


@dataclass(frozen=True)
class Chart:
    title: str
    svg: SafeString | None  # None when there is nothing to draw
    rows: list[tuple[str, str]]  # the same figures as the chart: (label, value as written)
    column: str  # heading of the value column of the table


def _svg(chart: pygal.graph.graph.Graph, title: str) -> SafeString:
    # pygal names each chart by a random UUID (its CSS is scoped to it). A name drawn from the
    # title keeps the page the same from one rendering to the next, and keeps runs of digits
    # out of it that a log scanner would take for a card number ("…-4152-378735200669").
    chart.uuid = hashlib.sha256(title.encode()).hexdigest()[:12]
    svg = _SCRIPT.sub("", chart.render(is_unicode=True)).replace(_TOOLTIP_STYLE, "")
    svg = svg.replace("<svg", format_html('<svg role="img" aria-label="{}"', title), 1)
    # pygal writes labels and values through an XML serializer, which escapes them.
    return mark_safe(svg)


def _money_formatter(currency: str) -> Callable[[float], str]:
    return lambda value: format_money(round(value), currency)


def _count_formatter(value: float) -> str:
    return number_format(round(value))


def _bar_chart(
    *,
    title: str,
    column: str,
    rows: list[tuple[str, int]],
    formatter: Callable[[float], str],
    integer_axis: bool = False,
) -> Chart:
    table = [(label, formatter(value)) for label, value in rows]
    if not rows:
        return Chart(title=title, svg=None, rows=table, column=column)
    chart = pygal.HorizontalBar(
        js=[],
        style=_STYLE,
        show_legend=False,
        disable_xml_declaration=True,
        value_formatter=formatter,
        truncate_label=-1,  # whole names: a cut one ("Épicerie du C…") cannot be read
        # Amounts in thousands of euros are wide: few of them along the axis, written level,
        # so that none runs into the next (tests/browser checks the labels' boxes).
        max_scale=4,
        width=900,
        height=120 + 36 * len(rows),
    )
    if integer_axis:
        top = max(value for _label, value in rows)
        chart.y_labels = list(range(0, top + 1, max(1, ceil(top / 8))))
    # A horizontal bar chart draws its first bar at the bottom: reversed, the bars read from
    # the top in the order of the table.
    chart.x_labels = [label for label, _value in reversed(rows)]
    chart.add(column, [value for _label, value in reversed(rows)])
    return Chart(title=title, svg=_svg(chart, title), rows=table, column=column)


TIME_LABELS = 7  # dates along a time chart's axis, at most


def _time_chart(
    *, title: str, column: str, rows: list[tuple[date, int]], currency: str, by_month: bool
) -> Chart:
    formatter = _money_formatter(currency)
    labels = [
        date_format(day, "YEAR_MONTH_FORMAT" if by_month else "SHORT_DATE_FORMAT")
        for day, _v in rows
    ]
    table = [(label, formatter(value)) for label, (_day, value) in zip(labels, rows, strict=True)]
    if not any(value for _day, value in rows):
        return Chart(title=title, svg=None, rows=table, column=column)
    chart = pygal.Bar(
        js=[],
        style=_STYLE,
        show_legend=False,
        disable_xml_declaration=True,
        value_formatter=formatter,
        # Level labels, few enough to sit side by side: one day or month in every few.
        show_minor_x_labels=False,
        truncate_label=-1,
        x_labels_major_every=max(1, ceil(len(rows) / TIME_LABELS)),
        max_scale=5,
        width=900,
        height=420,
    )
    chart.x_labels = labels
    chart.add(column, [value for _day, value in rows])
    return Chart(title=title, svg=_svg(chart, title), rows=table, column=column)


def _top(rows: list[tuple[str, int]], other: str) -> list[tuple[str, int]]:
    if len(rows) <= MAX_BARS:
        return rows
    kept = rows[: MAX_BARS - 1]
    return [*kept, (other, sum(value for _label, value in rows[MAX_BARS - 1 :]))]


# --- figures as tables ----------------------------------------------------------------------------


def _position(figures: reports.ProgramFigures) -> list[tuple[str, int]]:
    """Where the money paid in is now: these lines add up to it."""
    return [
        (gettext("Not yet granted: can be allocated"), figures.float_available),
        (gettext("Granted, still available to beneficiaries"), figures.in_pockets),
        (gettext("Held by payments not yet completed"), figures.held),
        (gettext("Spent by beneficiaries (payments minus refunds)"), figures.spent),
        (gettext("Left on ended aid, not yet returned"), figures.not_yet_returned),
        *(
            [(gettext("Card payments beyond the aid, owed (to review)"), -figures.receivable)]
            if figures.receivable
            else []
        ),
    ]


def _figure_tables(figures: reports.ProgramFigures) -> dict:
    """Where the money is and how it moved, as written in tables."""
    money = _money_formatter(figures.currency)
    amount = {
        name: money(getattr(figures, name))
        for name in ("funded", "allocated", "spent", "held", "float_available", "in_pockets")
    }
    position = _position(figures)
    used = f"{figures.spent * 100 // figures.allocated} %" if figures.allocated else "—"
    return {
        "currency": figures.currency,
        "amount": amount,
        # The key figures, as tiles above the charts.
        "tiles": [
            (gettext("Funded"), amount["funded"]),
            (gettext("Granted"), amount["allocated"]),
            (gettext("Spent"), amount["spent"]),
            (gettext("Left to grant"), amount["float_available"]),
            (gettext("Aid used"), used),
        ],
        "position": [(label, money(value)) for label, value in position],
        "movements": [
            (_("Granted to beneficiaries"), amount["allocated"]),
            (_("Paid to shops"), money(figures.captured)),
            (_("Refunded by shops"), money(figures.refunded)),
            (_("Returned to the program from expired aid"), money(figures.expired_returned)),
            (_("Returned to the program from revoked aid"), money(figures.revoked_returned)),
        ],
    }


def _refusal_tables(program: Program, period: reports.Period) -> list[dict]:
    """Refused payments by reason, shop, kind of shop and commune; a registered shop links to
    its refused payments."""
    headings = {
        "reason": _("Refusals by reason"),
        "shop": _("Refusals by shop"),
        "category": _("Refusals by kind of shop"),
        "commune": _("Refusals by commune"),
    }
    payments = reverse("admin:wallet_decision_changelist")
    by = reports.refusals_by(program=program, period=period)
    return [
        {
            "dimension": dimension,
            "heading": heading,
            "lines": [
                (
                    line.label,
                    line.payments,
                    format_money(line.amount, program.currency),
                    line.people,
                    (
                        f"{payments}?merchant__id__exact={line.merchant_id}"
                        f"&status__in=declined,partially_approved"
                        if line.merchant_id
                        else None
                    ),
                )
                for line in by[dimension]
            ],
        }
        for dimension, heading in headings.items()
    ]


def _nonuse_tables(program: Program) -> list[dict]:
    """Non-use of the aid (funders/nonuse.py) by program, commune and age band."""
    headings = (
        ("program", _("Non-use of the aid")),
        ("commune", _("Non-use by commune")),
        ("age", _("Non-use by age")),
    )
    return [
        {
            "heading": heading,
            "lines": [
                (
                    line.label,
                    line.granted,
                    line.spent,
                    f"{line.share_unspent} %",
                    line.reached_out,
                    line.spent_after,
                )
                for line in nonuse.nonuse_figures(program=program, by=by)
            ],
        }
        for by, heading in headings
    ]


def _position_chart(figures: reports.ProgramFigures) -> Chart:
    return _bar_chart(
        title=gettext("Where the money is (%(currency)s)") % {"currency": figures.currency},
        column=gettext("Amount"),
        rows=_position(figures) if figures.funded else [],
        formatter=_money_formatter(figures.currency),
    )


def _spent_by_program_chart(
    programs: list[Program], figures: dict[int, reports.ProgramFigures], currency: str
) -> Chart:
    rows = sorted(
        (
            (program.name, figures[program.pk].spent)
            for program in programs
            if program.currency == currency and figures[program.pk].spent
        ),
        key=lambda row: (-row[1], row[0]),
    )
    return _bar_chart(
        title=gettext("Spent on each program (%(currency)s)") % {"currency": currency},
        column=gettext("Spent"),
        rows=_top(rows, gettext("Other programs")),
        formatter=_money_formatter(currency),
    )


@admin.register(ProgramDashboard)
class ProgramDashboardAdmin(FunderScopedAdmin):
    funder_path = "funder"
    view_role = Role.AGENT
    add_role = None
    change_role = None
    delete_role = None

    def get_urls(self):
        export = path(
            "<path:object_id>/export/<str:kind>/<str:file_format>/",
            self.admin_site.admin_view(self.export_view),
            name="funders_programdashboard_export",
        )
        download = path(
            "<path:object_id>/exports/<int:export_id>/",
            self.admin_site.admin_view(self.download_view),
            name="funders_programdashboard_download",
        )
        # Before the model's own URLs, whose catch-all would take them.
        return [export, download, *super().get_urls()]

    def _context(self, request, **context) -> dict:
        return {**self.admin_site.each_context(request), "opts": self.opts, **context}

    # --- the funder's dashboard -----------------------------------------------------------------

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        choices = list(funders_of(request.user, role=self.view_role))
        funder = self._chosen_funder(request, choices)
        programs = list(self.get_queryset(request).filter(funder=funder))
        # The figures may be a moment old: from the read replica when there is one.
        with replica_reads():
            figures = reports.program_figures(programs=programs)
        totals = reports.figures_by_currency(figures.values())
        context = self._context(
            request,
            title=_("Dashboard"),
            funder=funder,
            funder_choices=choices,
            totals=[
                {"figures": _figure_tables(total), "chart": _position_chart(total)}
                for total in totals.values()
            ],
            programs=[(program, _figure_tables(figures[program.pk])) for program in programs],
            charts=[_spent_by_program_chart(programs, figures, currency) for currency in totals],
        )
        return TemplateResponse(
            request, "admin/funders/programdashboard/funder_dashboard.html", context
        )

    def _chosen_funder(self, request, choices: list[Funder]) -> Funder | None:
        """?funder=<id> among the user's funders (404 otherwise); their first by default."""
        chosen = request.GET.get("funder")
        if chosen is None:
            return choices[0] if choices else None
        for funder in choices:
            if str(funder.pk) == chosen:
                return funder
        raise Http404

    # --- a program's dashboard ------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        program = self.get_scoped_object(request, object_id, role=self.view_role)
        form = PeriodForm(request.GET)
        if form.is_valid():
            period = form.cleaned_data["period"]
            # The dates left blank show as those of the period in use.
            form = PeriodForm({"from": period.start.isoformat(), "to": period.end.isoformat()})
        else:
            period = reports.Period.default(today=_today())
        with replica_reads():
            figures = reports.program_figures(programs=[program])[program.pk]
            money = _money_formatter(program.currency)
            charts = self._program_charts(program, period, money)
            nonuse_tables = _nonuse_tables(program)
            refusals = _refusal_tables(program, period)
        query = urlencode({"from": period.start.isoformat(), "to": period.end.isoformat()})
        context = self._context(
            request,
            title=program.name,
            program=program,
            figures=_figure_tables(figures),
            position_chart=_position_chart(figures),
            period_form=form,
            period=period,
            charts=charts,
            nonuse=nonuse_tables,
            refusals=refusals,
            exports=[
                (
                    label,
                    [
                        (
                            file_format.upper(),
                            reverse(
                                "admin:funders_programdashboard_export",
                                args=[program.pk, kind, file_format],
                            )
                            + ("" if kind == "allocations" else f"?{query}"),
                        )
                        for file_format in exports.FORMATS
                    ],
                )
                for kind, label in EXPORT_LABELS.items()
            ],
            prepared=[
                (
                    export,
                    EXPORT_LABELS.get(export.kind, export.kind),
                    reverse(
                        "admin:funders_programdashboard_download", args=[program.pk, export.pk]
                    ),
                )
                for export in program.exports.order_by("-created_at")[:RECENT_EXPORTS]
            ],
        )
        return TemplateResponse(
            request, "admin/funders/programdashboard/program_dashboard.html", context
        )

    def _program_charts(self, program: Program, period: reports.Period, money) -> list[Chart]:
        spent = gettext("Spent")
        return [
            _time_chart(
                title=gettext("Spending month by month")
                if period.by_month
                else gettext("Spending day by day"),
                column=spent,
                rows=reports.spending_over_time(program=program, period=period),
                currency=program.currency,
                by_month=period.by_month,
            ),
            _bar_chart(
                title=gettext("Spending by kind of shop"),
                column=spent,
                rows=_top(
                    reports.spending_by_category(program=program, period=period),
                    gettext("Other kinds of shop"),
                ),
                formatter=money,
            ),
            _bar_chart(
                title=gettext("Spending by shop"),
                column=spent,
                rows=_top(
                    reports.spending_by_merchant(program=program, period=period),
                    gettext("Other shops"),
                ),
                formatter=money,
            ),
            _bar_chart(
                title=gettext("Spending by département of the shop"),
                column=spent,
                rows=_top(
                    reports.spending_by_departement(program=program, period=period),
                    gettext("Other départements"),
                ),
                formatter=money,
            ),
            _bar_chart(
                title=gettext("Payments refused by the rules of this program"),
                column=gettext("Payments refused"),
                rows=[
                    (reports.reason_label(code), count)
                    for code, count in reports.declines_by_reason(program=program, period=period)
                ],
                formatter=_count_formatter,
                integer_axis=True,
            ),
        ]

    def export_view(self, request, object_id, kind, file_format):
        """POST: the export is asked for, built by a task; the dashboard shows it being
        prepared, then the link to download it."""
        program = self.get_scoped_object(request, object_id, role=self.view_role)
        if kind not in exports.KINDS or file_format not in exports.FORMATS:
            raise Http404
        url = reverse("admin:funders_programdashboard_change", args=[program.pk])
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        form = PeriodForm(request.GET)
        if not form.is_valid():
            # The dashboard shows what is wrong with the dates.
            return redirect(f"{url}?{request.GET.urlencode()}")
        exports.export_request(
            program=program,
            kind=kind,
            file_format=file_format,
            period=form.cleaned_data["period"],
            user=request.user,
        )
        messages.info(
            request,
            gettext("Your file is being prepared: it will be ready to download below in a moment."),
        )
        return redirect(f"{url}?{request.GET.urlencode()}#exports")

    def download_view(self, request, object_id, export_id):
        """The file of a ready export, from the file storage, for the program's own staff."""
        program = self.get_scoped_object(request, object_id, role=self.view_role)
        export = get_object_or_404(
            ProgramExport, pk=export_id, program=program, status=ProgramExport.Status.READY
        )
        return FileResponse(
            export.file.open("rb"),
            as_attachment=True,
            filename=export.filename,
            content_type=export.content_type,
        )
