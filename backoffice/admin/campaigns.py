"""Proactive aid in the back office: campaigns (set up by managers, run on demand or on a
schedule), their fairness view and the export of their decisions; proposals, which agents
review one by one or in bulk: accept (perhaps for another amount), or reject with a reason.

Every decision goes through funders/campaigns.py: acceptance grants through the allocation
service (funds checked, idempotent) and notifies the person; nothing here saves a proposal."""

import math

import pygal
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.db.models import Count, OuterRef, Q, Subquery
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import content_disposition_header, urlencode
from django.utils.translation import gettext, ngettext, pgettext
from django.utils.translation import gettext_lazy as _
from pygal.style import Style
from simple_history.admin import SimpleHistoryAdmin

from backoffice import exports
from backoffice.admin.reports import _svg  # static SVG, as on the dashboards
from backoffice.admin.scoping import FunderScopedAdmin
from backoffice.forms import EuroField
from core.errors import DomainError
from core.money import format_money
from core.replica import replica_reads
from funders import eligibility, fairness
from funders.campaigns import (
    CampaignPaused,
    CampaignWithoutCriteria,
    campaign_create,
    campaign_run_later,
    proposal_accept,
    proposal_accept_many,
    proposal_reject,
)
from funders.models import Campaign, EligibilityCriterion, Enrolment, Program, Proposal
from funders.tenancy import Role

RUNS_SHOWN = 10

# --- campaigns ------------------------------------------------------------------------------------


class CampaignForm(forms.ModelForm):
    amount = EuroField(label=_("Amount proposed (€)"))
    amount_per_child = EuroField(
        label=_("Added per dependent child (€)"),
        required=False,
        help_text=_("Leave empty to propose the same amount to every household."),
    )

    class Meta:
        model = Campaign
        fields = [
            "program",
            "name",
            "amount",
            "amount_per_child",
            "validity_days",
            "frequency",
            "is_active",
        ]

    def clean_amount_per_child(self) -> int:
        return self.cleaned_data.get("amount_per_child") or 0


@admin.register(Campaign)
class CampaignAdmin(FunderScopedAdmin, SimpleHistoryAdmin):
    """A manager sets a campaign up and runs it; agents see it, its runs, its fairness view and
    its decisions."""

    funder_path = "program__funder"
    view_role = Role.AGENT
    add_role = Role.MANAGER
    change_role = Role.MANAGER
    form = CampaignForm
    change_form_template = "admin/funders/campaign/change_form.html"
    list_display = [
        "name",
        "program",
        "amount_display",
        "frequency",
        "is_active",
        "last_run_at",
        "pending_display",
    ]
    list_filter = ["program", "frequency", "is_active"]
    search_fields = ["name", "program__name"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("program")
            .annotate(
                pending_count=Count(
                    "proposals", filter=Q(proposals__status=Proposal.Status.PENDING)
                )
            )
        )

    def get_fields(self, request, obj=None):
        fields = ["program", "name", "amount", "amount_per_child", "validity_days", "frequency"]
        if obj is None:
            return fields  # a new campaign is active, and has not run yet
        fields = [*fields, "is_active", "last_run_at", "pending_display"]
        if not self.has_change_permission(request, obj):
            # Read-only, the amounts are shown in euros rather than as the stored cents.
            fields = [field for field in fields if field != "amount_per_child"]
            fields[fields.index("amount")] = "amount_display"
        return fields

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        # Proposals already made belong to the program they were made for.
        return ["program", "last_run_at", "pending_display"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "program":
            kwargs["queryset"] = Program.objects.filter(is_active=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=_("amount proposed"), ordering="amount")
    def amount_display(self, campaign: Campaign) -> str:
        text = format_money(campaign.amount, campaign.program.currency)
        if campaign.amount_per_child:
            text = gettext("%(amount)s + %(per_child)s per child") % {
                "amount": text,
                "per_child": format_money(campaign.amount_per_child, campaign.program.currency),
            }
        return text

    @admin.display(description=_("waiting for a decision"), ordering="pending_count")
    def pending_display(self, campaign: Campaign):
        count = getattr(campaign, "pending_count", None)
        if count is None:
            count = campaign.proposals.filter(status=Proposal.Status.PENDING).count()
        url = _proposals_url(campaign, status=Proposal.Status.PENDING)
        return format_html('<a href="{}">{}</a>', url, count)

    def save_model(self, request, obj, form, change):
        if change:
            # The campaign's settings; its history keeps every version. Proposals already made
            # keep their amounts.
            super().save_model(request, obj, form, change)
            return
        created = campaign_create(
            program=obj.program,
            name=obj.name,
            amount=obj.amount,
            amount_per_child=obj.amount_per_child or 0,
            validity_days=obj.validity_days,
            frequency=obj.frequency,
            by=request.user,
        )
        obj.pk = created.pk
        obj.is_active = created.is_active
        obj.created_by = created.created_by
        obj.created_at = created.created_at
        obj._state.adding = False

    # --- the change page ------------------------------------------------------------------------

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context.update(self._tools(request, obj))
            context["runs"] = list(obj.runs.select_related("started_by")[:RUNS_SHOWN])
        return super().render_change_form(request, context, add, change, form_url, obj)

    def _tools(self, request, campaign: Campaign) -> dict:
        return {
            "run_url": reverse("admin:funders_campaign_run", args=[campaign.pk])
            if self._allowed(request, Role.MANAGER, campaign)
            else None,
            "proposals_url": _proposals_url(campaign),
            "fairness_url": reverse("admin:funders_campaign_fairness", args=[campaign.pk]),
            "export_urls": [
                (
                    file_format.upper(),
                    reverse("admin:funders_campaign_export", args=[campaign.pk, file_format]),
                )
                for file_format in exports.FORMATS
            ],
        }

    def get_urls(self):
        def view(function, suffix: str, route: str):
            return path(
                route,
                self.admin_site.admin_view(function),
                name=f"funders_campaign_{suffix}",
            )

        # Before the model's own URLs, whose catch-all would take them.
        return [
            view(self.run_view, "run", "<path:object_id>/run/"),
            view(self.fairness_view, "fairness", "<path:object_id>/fairness/"),
            view(self.export_view, "export", "<path:object_id>/export/<str:file_format>/"),
            *super().get_urls(),
        ]

    def run_view(self, request, object_id):
        campaign = self.get_scoped_object(request, object_id, role=Role.MANAGER)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not (campaign.is_active and campaign.program.is_active):
            self.message_user(request, CampaignPaused().message, messages.ERROR)
        elif not EligibilityCriterion.objects.filter(program=campaign.program_id).exists():
            self.message_user(request, CampaignWithoutCriteria().message, messages.ERROR)
        else:
            try:
                campaign_run_later(campaign=campaign, by=request.user)
            except DomainError as error:
                self.message_user(request, error.message, messages.ERROR)
            else:
                self.message_user(
                    request,
                    gettext("The campaign is running; refresh in a moment."),
                    messages.SUCCESS,
                )
        return redirect("admin:funders_campaign_change", campaign.pk)

    def fairness_view(self, request, object_id):
        campaign = self.get_scoped_object(request, object_id, role=self.view_role)
        run = fairness.latest_full_run(campaign)
        tables = fairness.campaign_fairness(campaign, run=run)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": campaign,
            "title": gettext("Who “%(campaign)s” reaches") % {"campaign": campaign},
            "campaign": campaign,
            "run": run,
            "tables": [(table, _fairness_chart(table)) for table in tables],
            **self._tools(request, campaign),
        }
        return TemplateResponse(request, "admin/funders/campaign/fairness.html", context)

    def export_view(self, request, object_id, file_format):
        campaign = self.get_scoped_object(request, object_id, role=self.view_role)
        if file_format not in exports.FORMATS:
            raise Http404
        with replica_reads():
            filename, content_type, content = exports.campaign_decisions_export(
                campaign=campaign, file_format=file_format
            )
        response = HttpResponse(content, content_type=content_type)
        response["Content-Disposition"] = content_disposition_header(True, filename)
        return response


def _proposals_url(campaign: Campaign, **filters) -> str:
    query = urlencode(
        {"campaign__id__exact": campaign.pk, **{f"{k}__exact": v for k, v in filters.items()}}
    )
    return f"{reverse('admin:funders_proposal_changelist')}?{query}"


_FAIRNESS_STYLE = Style(
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    background="transparent",
    plot_background="transparent",
    colors=("#417690", "#9bb9c9", "#e0a526", "#5b9e4d"),
    title_font_size=18,
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=13,
    value_font_size=13,
)


def _fairness_chart(table: fairness.Table):
    """Per group: eligible, already holding, proposed, accepted. The table under the chart holds
    the same figures; None when there is nothing to draw."""
    if not any(row.eligible or row.proposed for row in table.rows):
        return None
    chart = pygal.HorizontalBar(
        js=[],
        style=_FAIRNESS_STYLE,
        title=table.title,
        disable_xml_declaration=True,
        legend_at_bottom=True,
        truncate_label=40,
        width=900,
        height=160 + 60 * len(table.rows),
    )
    rows = list(reversed(table.rows))  # drawn from the bottom up: reversed, read top down
    chart.x_labels = [row.label for row in rows]
    # Head counts: whole-number ticks only.
    top = max(max(row.eligible, row.holding, row.proposed, row.accepted) for row in rows)
    step = max(1, math.ceil(top / 10))
    chart.y_labels = list(range(0, top + step, step))
    chart.add(gettext("Eligible"), [row.eligible for row in rows])
    chart.add(gettext("Already holding the aid"), [row.holding for row in rows])
    chart.add(gettext("Proposed"), [row.proposed for row in rows])
    chart.add(pgettext("number of proposals", "Accepted"), [row.accepted for row in rows])
    return _svg(chart, table.title)


# --- proposals ------------------------------------------------------------------------------------


class _GroupFilter(admin.SimpleListFilter):
    """A filter on one of the proposal's groups, listing the groups present in the rows the user
    may see, in reading order, with their labels."""

    dimension = ""
    UNKNOWN = "-"  # "" would mean "all"

    def lookups(self, request, model_admin):
        keys = set(
            model_admin.get_queryset(request)
            .order_by()
            .values_list(self.dimension, flat=True)
            .distinct()
        )
        return [
            (key or self.UNKNOWN, eligibility.group_label(self.dimension, key))
            for key in fairness.group_order(self.dimension, keys)
        ]

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(**{self.dimension: "" if value == self.UNKNOWN else value})


class DepartementFilter(_GroupFilter):
    title = _("département")
    parameter_name = dimension = "departement"


class AgeBandFilter(_GroupFilter):
    title = _("age band")
    parameter_name = dimension = "age_band"


class HouseholdFilter(_GroupFilter):
    title = _("household")
    parameter_name = dimension = "household_type"


class AcceptForm(forms.Form):
    amount = EuroField(
        label=_("Amount to grant (€)"),
        help_text=_("The amount proposed; change it to grant another amount."),
    )


class RejectForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("Kept with the decision, and in the export of the campaign's decisions."),
    )


@admin.register(Proposal)
class ProposalAdmin(FunderScopedAdmin, SimpleHistoryAdmin):
    """Agents review proposals: the review page (this model's change page) shows who, why and how
    much, and takes the decision. Nothing is added, edited or deleted by hand."""

    funder_path = "campaign__program__funder"
    view_role = Role.AGENT
    add_role = None
    change_role = None
    delete_role = None
    decide_role = Role.AGENT  # an agent keeps the last word on each proposal
    list_display = [
        "person",
        "campaign",
        "amount_display",
        "granted_display",
        "status",
        "departement_display",
        "age_band_display",
        "household_display",
        "created_at",
    ]
    list_filter = ["campaign", "status", DepartementFilter, AgeBandFilter, HouseholdFilter]
    list_select_related = ["beneficiary", "campaign__program"]
    search_fields = ["beneficiary__last_name", "beneficiary__first_name", "file_reference"]
    actions = ["accept_selected", "reject_selected"]

    def get_queryset(self, request):
        # The funder's own file number of each person (a person may have several funders).
        file_reference = Enrolment.objects.filter(
            funder=OuterRef("campaign__program__funder"), beneficiary=OuterRef("beneficiary")
        ).values("reference")[:1]
        return (
            super()
            .get_queryset(request)
            .select_related("beneficiary", "campaign__program", "decided_by")
            .annotate(file_reference=Subquery(file_reference))
        )

    # --- permissions ----------------------------------------------------------------------------

    def has_decide_permission(self, request, obj=None) -> bool:
        return self._allowed(request, self.decide_role, obj)

    # --- the list -------------------------------------------------------------------------------

    @admin.display(description=_("person"), ordering="beneficiary__last_name")
    def person(self, proposal: Proposal) -> str:
        reference = getattr(proposal, "file_reference", "")
        if reference:
            return f"{proposal.beneficiary} ({reference})"
        return str(proposal.beneficiary)

    @admin.display(description=_("amount proposed"), ordering="amount")
    def amount_display(self, proposal: Proposal) -> str:
        return format_money(proposal.amount, proposal.campaign.program.currency)

    @admin.display(description=_("amount granted"), ordering="granted_amount")
    def granted_display(self, proposal: Proposal) -> str:
        if proposal.granted_amount is None:
            return "—"
        return format_money(proposal.granted_amount, proposal.campaign.program.currency)

    @admin.display(description=_("département"), ordering="departement")
    def departement_display(self, proposal: Proposal) -> str:
        return eligibility.group_label("departement", proposal.departement)

    @admin.display(description=_("age band"), ordering="age_band")
    def age_band_display(self, proposal: Proposal) -> str:
        return eligibility.group_label("age_band", proposal.age_band)

    @admin.display(description=_("household"), ordering="household_type")
    def household_display(self, proposal: Proposal) -> str:
        return eligibility.group_label("household_type", proposal.household_type)

    # --- the review page ------------------------------------------------------------------------

    def change_view(self, request, object_id, form_url="", extra_context=None):
        proposal = self.get_scoped_object(request, object_id, role=self.view_role)
        may_decide = self.has_decide_permission(request, proposal)
        pending = proposal.status == Proposal.Status.PENDING
        accept_form = AcceptForm(prefix="accept", initial={"amount": proposal.amount})
        reject_form = RejectForm(prefix="reject")
        if request.method == "POST":
            if not may_decide:
                raise PermissionDenied
            if "_accept" in request.POST:
                accept_form = AcceptForm(request.POST, prefix="accept")
                if accept_form.is_valid() and self._accept(
                    request, proposal, accept_form.cleaned_data["amount"]
                ):
                    return redirect("admin:funders_proposal_change", proposal.pk)
            elif "_reject" in request.POST:
                reject_form = RejectForm(request.POST, prefix="reject")
                if reject_form.is_valid() and self._reject(
                    request, proposal, reject_form.cleaned_data["reason"]
                ):
                    return redirect("admin:funders_proposal_change", proposal.pk)
            else:
                self.message_user(
                    request, gettext("Choose to accept or to reject the proposal."), messages.ERROR
                )
        currency = proposal.campaign.program.currency
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": proposal,
            "proposal": proposal,
            "title": gettext("Proposal to %(person)s") % {"person": proposal.beneficiary},
            "person": self.person(proposal),
            "file_reference": getattr(proposal, "file_reference", ""),
            "reasons": [eligibility.explain(reason) for reason in proposal.reasons or []],
            "unmet": [eligibility.explain(reason) for reason in proposal.unmet or []],
            "groups": [
                (_("département"), self.departement_display(proposal)),
                (_("age band"), self.age_band_display(proposal)),
                (_("household"), self.household_display(proposal)),
            ],
            "amount": format_money(proposal.amount, currency),
            "granted": format_money(proposal.granted_amount, currency)
            if proposal.granted_amount is not None
            else "",
            "decided_by": _user_name(proposal.decided_by),
            "may_decide": may_decide and pending,
            "accept_form": accept_form,
            "reject_form": reject_form,
            "beneficiary_url": reverse(
                "admin:wallet_beneficiary_change", args=[proposal.beneficiary_id]
            ),
            "campaign_url": reverse("admin:funders_campaign_change", args=[proposal.campaign_id]),
            "allocation_url": reverse(
                "admin:funders_allocation_change", args=[proposal.allocation_id]
            )
            if proposal.allocation_id
            else "",
            "history_url": reverse("admin:funders_proposal_history", args=[proposal.pk]),
            "changelist_url": _proposals_url(proposal.campaign),
            "media": self.media,
        }
        return TemplateResponse(request, "admin/funders/proposal/review.html", context)

    def _accept(self, request, proposal: Proposal, amount: int) -> bool:
        try:
            accepted = proposal_accept(
                proposal=proposal,
                by=request.user,
                amount=None if amount == proposal.amount else amount,
            )
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return False
        self.message_user(
            request,
            gettext("Accepted: %(amount)s granted to %(person)s, who is told of it.")
            % {
                "amount": format_money(
                    accepted.granted_amount or amount, proposal.campaign.program.currency
                ),
                "person": proposal.beneficiary,
            },
            messages.SUCCESS,
        )
        return True

    def _reject(self, request, proposal: Proposal, reason: str) -> bool:
        try:
            proposal_reject(proposal=proposal, by=request.user, reason=reason)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return False
        self.message_user(
            request,
            gettext("Rejected: the proposal to %(person)s is closed, with your reason.")
            % {"person": proposal.beneficiary},
            messages.SUCCESS,
        )
        return True

    # --- bulk decisions -------------------------------------------------------------------------

    def _pending(self, request, queryset):
        """The selection, within the funders where the user decides, waiting for a decision;
        and how many selected proposals were not."""
        decidable = self.scope(queryset, request, role=self.decide_role)
        pending = decidable.filter(status=Proposal.Status.PENDING).order_by("created_at", "pk")
        skipped = queryset.count() - pending.count()
        return pending, skipped

    def _tell_skipped(self, request, skipped: int) -> None:
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d selected proposal was not waiting for a decision: left as it is.",
                    "%(count)d selected proposals were not waiting for a decision: left as "
                    "they are.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )

    @admin.action(description=_("Accept the selected proposals"), permissions=["decide"])
    def accept_selected(self, request, queryset):
        pending, skipped = self._pending(request, queryset)
        result = proposal_accept_many(
            proposals=list(pending.select_related("beneficiary", "campaign__program")),
            by=request.user,
        )
        accepted = len(result.accepted)
        self.message_user(
            request,
            ngettext(
                "%(count)d proposal accepted: the aid is granted and the person is told of it.",
                "%(count)d proposals accepted: the aid is granted and each person is told of it.",
                accepted,
            )
            % {"count": accepted},
            messages.SUCCESS if accepted else messages.WARNING,
        )
        for proposal, message in result.refused:
            self.message_user(request, f"{proposal.beneficiary}: {message}", messages.WARNING)
        if result.stopped:
            # Says where it stopped and how many are still waiting.
            self.message_user(request, result.stopped, messages.ERROR)
        self._tell_skipped(request, skipped)

    @admin.action(description=_("Reject the selected proposals"), permissions=["decide"])
    def reject_selected(self, request, queryset):
        pending, skipped = self._pending(request, queryset)
        form = RejectForm(request.POST if "confirm" in request.POST else None, prefix="reject")
        if form.is_bound and form.is_valid():
            rejected = 0
            for proposal in pending.select_related("beneficiary"):
                if self._reject_one(request, proposal, form.cleaned_data["reason"]):
                    rejected += 1
            self.message_user(
                request,
                ngettext(
                    "%(count)d proposal rejected, with your reason.",
                    "%(count)d proposals rejected, with your reason.",
                    rejected,
                )
                % {"count": rejected},
                messages.SUCCESS if rejected else messages.WARNING,
            )
            self._tell_skipped(request, skipped)
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": gettext("Reject proposals"),
            "form": form,
            "proposals": list(pending.select_related("beneficiary", "campaign")),
            "skipped": skipped,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/funders/proposal/reject.html", context)

    def _reject_one(self, request, proposal: Proposal, reason: str) -> bool:
        try:
            proposal_reject(proposal=proposal, by=request.user, reason=reason)
        except DomainError as error:
            self.message_user(request, f"{proposal.beneficiary}: {error.message}", messages.ERROR)
            return False
        return True


def _user_name(user) -> str:
    if user is None:
        return ""
    return user.get_full_name() or user.get_username()
