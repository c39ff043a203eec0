"""Allocations, their revocation, and recurring allocations. Grants are made from the
beneficiaries' pages (one person or a selection) and from imported files; here they are
followed, revoked, and scheduled."""

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from backoffice.admin.dry_runs import DryRunConfirmation, RuleDryRunAdmin
from backoffice.admin.scoping import FunderScopedAdmin
from backoffice.forms import EuroField
from backoffice.rules_form import RulesForm
from core.errors import DomainError
from core.money import format_money
from core.time import format_instant, format_until
from engine.rules import merge_rules, override_rules
from funders import eligibility
from funders.models import Allocation, Proposal, RecurringAllocation
from funders.services import allocation_revoke, recurring_run_date
from funders.tenancy import Role


class RevokeForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=300,
        help_text=_("Kept in the allocation's history; the beneficiary's agent can read it."),
    )


class OverrideRulesForm(RulesForm):
    """The rules of one allocation, shown whole (the program's with the allocation's overrides)
    and cleaned to overrides: the sections that differ from the program's, and null for a
    program rule lifted, so that a later change of the program's other sections still reaches
    this person."""

    def clean(self):
        cleaned = super().clean()
        if self.rules is not None:
            self.rules = override_rules(self.instance.program.rules, self.rules)
        return cleaned


class AllocationRulesForm(DryRunConfirmation, OverrideRulesForm, forms.ModelForm):
    """An allocation's overrides, changed only with the dry run that tested them
    (backoffice/admin/dry_runs.py)."""

    class Meta:
        model = Allocation
        fields: list[str] = []

    def __init__(self, *args, **kwargs):
        instance = kwargs.get("instance")
        if instance is not None:
            kwargs.setdefault("initial_rules", self.tested_rules(instance, instance.rules))
        super().__init__(*args, **kwargs)

    @staticmethod
    def tested_rules(instance, rules: dict) -> dict:
        return merge_rules(instance.program.rules, rules)

    def clean(self):
        cleaned = super().clean()
        if self.rules is not None and not self.non_field_errors():
            self.instance.rules = self.rules
        return cleaned


@admin.register(Allocation)
class AllocationAdmin(RuleDryRunAdmin, FunderScopedAdmin, SimpleHistoryAdmin):
    funder_path = "program__funder"
    add_role = None  # grants are made from beneficiaries and imports, through the services
    form = AllocationRulesForm
    list_display = [
        "beneficiary",
        "program",
        "amount_display",
        "left_display",
        "validity_display",
        "status",
    ]
    list_filter = ["status", "program", "valid_until"]
    list_select_related = ["beneficiary", "program", "pocket__account"]
    search_fields = ["beneficiary__last_name", "beneficiary__first_name", "beneficiary__email"]
    readonly_fields = [
        "program",
        "beneficiary",
        "amount_display",
        "left_display",
        "validity_display",
        "rules",
        "status",
        "created_by",
        "created_at",
        "ended_at",
        "end_reason",
        "why_granted",
    ]
    actions = ["revoke"]

    def get_fieldsets(self, request, obj=None):
        fieldsets: list = [(None, {"fields": self.readonly_fields})]
        if obj is None or not self.has_change_permission(request, obj):
            return fieldsets
        return (
            fieldsets
            + [(title, {"fields": names}) for title, names in RulesForm.SECTIONS]
            + self.dry_run_fieldsets(request, obj)
        )

    @admin.display(description=_("why it was granted"))
    def why_granted(self, allocation):
        """A grant made from a campaign's proposal explains itself: the criteria the person met
        that day, and who accepted it."""
        proposal = Proposal.objects.filter(allocation=allocation).select_related("campaign").first()
        if proposal is None:
            return "—"
        link = reverse("admin:funders_proposal_change", args=[proposal.pk])
        return format_html(
            '<a href="{}">{}</a><ul>{}</ul>',
            link,
            _("Proposed by the campaign “%(campaign)s”") % {"campaign": proposal.campaign},
            format_html_join(
                "", "<li>{}</li>", ((eligibility.explain(r),) for r in proposal.reasons)
            ),
        )

    @admin.display(description=_("Validity"), ordering="valid_until")
    def validity_display(self, allocation):
        """As people say it, "from 1 December 2026 until 31 March 2027 included", never the
        exclusive end the ledger keeps (1 April 00:00)."""
        start = format_instant(allocation.valid_from)
        if allocation.valid_until is None:
            return gettext("from %(start)s, with no end") % {"start": start}
        return gettext("from %(start)s until %(end)s") % {
            "start": start,
            "end": format_until(allocation.valid_until),
        }

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, allocation):
        return format_money(allocation.amount, allocation.currency)

    @admin.display(description=_("left to spend"))
    def left_display(self, allocation):
        return format_money(allocation.pocket.account.available, allocation.currency)

    def has_change_permission(self, request, obj=None):
        # Only the rules of an aid still in use are edited here (its person's own overrides);
        # revoking is an action, the rest is history.
        if obj is not None and obj.status != Allocation.Status.ACTIVE:
            return False
        return super().has_change_permission(request, obj)

    def has_revoke_permission(self, request):
        return self.has_manage_permission(request)

    @admin.action(description=_("Revoke the selected allocations"), permissions=["revoke"])
    def revoke(self, request, queryset):
        queryset = self.scope(queryset, request, role=Role.MANAGER).filter(
            status=Allocation.Status.ACTIVE
        )
        form = RevokeForm(request.POST if "revoke" in request.POST else None)
        if form.is_bound and form.is_valid():
            revoked = 0
            for allocation in queryset.select_related("program"):
                try:
                    allocation_revoke(allocation=allocation, reason=form.cleaned_data["reason"])
                except DomainError as error:
                    self.message_user(request, f"{allocation}: {error.message}", messages.ERROR)
                    continue
                revoked += 1
            self.message_user(
                request,
                ngettext(
                    "%(count)d allocation revoked; what was left returned to its program.",
                    "%(count)d allocations revoked; what was left returned to their programs.",
                    revoked,
                )
                % {"count": revoked},
                messages.SUCCESS,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Revoke allocations"),
            "form": form,
            "allocations": queryset.select_related("beneficiary", "program", "pocket__account"),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/funders/allocation/revoke.html", context)


class RecurringAllocationForm(forms.ModelForm):
    amount = EuroField(label=_("Amount per run, in euros"))

    class Meta:
        model = RecurringAllocation
        fields = [
            "program",
            "name",
            "amount",
            "day_of_month",
            "starts_on",
            "runs",
            "validity_days",
            "beneficiaries",
            "is_active",
        ]
        widgets = {"starts_on": forms.DateInput(attrs={"type": "date"})}


@admin.register(RecurringAllocation)
class RecurringAllocationAdmin(FunderScopedAdmin, SimpleHistoryAdmin):
    """ "Every month on the 1st, 50 € to these people, for 6 months". The scheduler makes each
    run once; stopping a schedule is unticking "active"."""

    funder_path = "program__funder"
    form = RecurringAllocationForm
    list_display = [
        "name",
        "program",
        "amount_display",
        "progress",
        "next_run",
        "is_active",
        "last_error",
    ]
    list_filter = ["program", "is_active"]
    readonly_fields = ["runs_done", "last_error", "created_by", "created_at"]
    autocomplete_fields = ["beneficiaries"]

    @admin.display(description=_("amount per run"), ordering="amount")
    def amount_display(self, schedule):
        return format_money(schedule.amount, schedule.program.currency)

    @admin.display(description=_("runs made"))
    def progress(self, schedule):
        return f"{schedule.runs_done} / {schedule.runs}"

    @admin.display(description=_("next run"))
    def next_run(self, schedule):
        if not schedule.is_active or schedule.runs_done >= schedule.runs:
            return "—"
        return recurring_run_date(schedule, schedule.runs_done)

    def get_readonly_fields(self, request, obj=None):
        # Once a run is made, its amount and calendar are history: a new schedule says otherwise.
        if obj and obj.runs_done:
            return [*self.readonly_fields, "program", "amount", "day_of_month", "starts_on"]
        return self.readonly_fields

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
