"""Programs and their funding: one page where a manager sets a program's rules, the rules in plain
words as beneficiaries read them, its eligibility criteria (for proactive aid), and a page to
record money the funder paid in."""

import re
import uuid

import stripe
from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AdminDateWidget
from django.core.exceptions import PermissionDenied
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.forms.models import BaseInlineFormSet
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from backoffice.admin.closing import ProgramClosingAdmin
from backoffice.admin.dry_runs import DryRunConfirmation, RuleDryRunAdmin
from backoffice.admin.scoping import FunderScopedAdmin
from backoffice.forms import EuroField, OneTimeTokenForm
from backoffice.rules_form import RulesForm
from core.errors import DomainError, IdempotencyConflict
from core.money import format_money
from engine.rules import PocketRules, RulesError
from funders import eligibility
from funders.models import EligibilityCriterion, Funding, Program
from funders.services import program_create, program_fund
from funders.tenancy import Role, funder_ids, funders_of, is_operator
from merchants.selectors import merchants_accepting
from stripe_issuing.client import cards_enabled
from stripe_issuing.funding import program_topup

VALIDITY_FIELDS = ["default_valid_from", "default_valid_until", "default_validity_days"]


class ProgramForm(DryRunConfirmation, RulesForm, forms.ModelForm):
    """The program's own fields and its rules as plain fields, saved together; a change of the
    rules only with the dry run that tested them (backoffice/admin/dry_runs.py)."""

    class Meta:
        model = Program
        fields = [
            "funder",
            "name",
            "purpose",
            "currency",
            "is_active",
            *VALIDITY_FIELDS,
            "nonuse_idle_days",
            "nonuse_expiry_days",
            "nonuse_unspent_percent",
        ]
        widgets = {
            "default_valid_from": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "default_valid_until": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        }

    def __init__(self, *args, **kwargs):
        instance = kwargs.get("instance")
        kwargs.setdefault("initial_rules", instance.rules if instance else None)
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        if self.rules is not None:
            self.instance.rules = self.rules
        start, end = cleaned.get("default_valid_from"), cleaned.get("default_valid_until")
        if start and end and end < start:
            self.add_error("default_valid_until", _("The last day cannot come before the first."))
        return cleaned


class TopupForm(OneTimeTokenForm):
    amount = EuroField(label=_("Amount to send to the card balance (€)"))


class FundingForm(forms.Form):
    """Money the funder paid in, as read on the bank statement or in Stripe. The hidden token is
    drawn when the page is shown and makes the funding's idempotency key."""

    amount = EuroField(label=_("Amount received (€)"))
    method = forms.ChoiceField(label=_("How it was paid"), choices=Funding.Method.choices)
    reference = forms.CharField(
        label=_("Reference"),
        max_length=140,
        help_text=_(
            "The reference on the bank statement, or the Stripe top-up's id (it starts with tu_)."
        ),
    )
    received_on = forms.DateField(label=_("Received on"), widget=AdminDateWidget)
    token = forms.UUIDField(widget=forms.HiddenInput)

    def clean_received_on(self):
        received_on = self.cleaned_data["received_on"]
        if received_on > timezone.localdate():
            raise forms.ValidationError(
                _("Money cannot be received in the future."), code="future_date"
            )
        return received_on

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("method") == Funding.Method.STRIPE_TOPUP and not cleaned.get(
            "reference", ""
        ).startswith("tu_"):
            self.add_error(
                "reference",
                forms.ValidationError(
                    _("A Stripe top-up's id starts with tu_."), code="not_a_topup"
                ),
            )
        return cleaned


# --- eligibility criteria -----------------------------------------------------------------------

_VALUE_SEPARATORS = re.compile(r"[,;\n]")


class CriterionForm(forms.ModelForm):
    """A criterion as a manager writes it: its values as a list typed on one line."""

    values = forms.CharField(
        label=_("values"),
        required=False,
        widget=forms.TextInput(attrs={"size": 20}),
        help_text=_(
            "Separated by commas: département numbers (38, 73), commune INSEE codes, "
            "postcodes or their beginning, or the accepted values of a fact."
        ),
    )

    class Meta:
        model = EligibilityCriterion
        fields = [
            "kind",
            "values",
            "minimum",
            "maximum",
            "other_program",
            "aid_condition",
            "attribute",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["values"] = ", ".join(str(value) for value in self.instance.values or [])

    def clean_values(self) -> list[str]:
        # The model's clean() puts them in the form the checks compare (see eligibility).
        parts = _VALUE_SEPARATORS.split(self.cleaned_data.get("values") or "")
        return [part.strip() for part in parts if part.strip()]


class CriterionFormSet(BaseInlineFormSet):
    """The criteria of one program. The other aid a criterion names is one of the same funder's
    programs, whoever edits the page."""

    def add_fields(self, form, index):
        super().add_fields(form, index)
        field = form.fields.get("other_program")
        if field is not None:
            program = self.instance
            field.queryset = field.queryset.filter(funder_id=program.funder_id).exclude(
                pk=program.pk
            )


class EligibilityCriterionInline(admin.TabularInline):
    """Who a program's aid is proposed to: every criterion must be met. Managers edit them,
    agents read them; each change is kept in the criteria's history (below the criteria)."""

    model = EligibilityCriterion
    form = CriterionForm
    formset = CriterionFormSet
    fk_name = "program"
    extra = 0
    fields = [
        "kind",
        "values",
        "minimum",
        "maximum",
        "other_program",
        "aid_condition",
        "attribute",
        "in_words",
    ]
    readonly_fields = ["in_words"]
    verbose_name = _("eligibility criterion")
    verbose_name_plural = _("eligibility criteria (proactive aid): a person must meet them all")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("other_program")

    @admin.display(description=_("In words"))
    def in_words(self, criterion: EligibilityCriterion) -> str:
        if criterion is None or criterion.pk is None:
            return "—"
        return eligibility.describe(criterion)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        # An inline is its own admin object: the program page's scoping does not reach it.
        if db_field.related_model is Program:
            queryset = kwargs.get("queryset", Program.objects.all())
            if not is_operator(request.user):
                queryset = queryset.filter(funder__in=funder_ids(request.user, role=Role.MANAGER))
            kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # The program's page decides: managers of its funder change, its staff read.
    def _program_admin(self):
        return self.admin_site._registry[Program]

    def has_view_permission(self, request, obj=None):
        return self._program_admin().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._program_admin().has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._program_admin().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._program_admin().has_change_permission(request, obj)


CRITERIA_HISTORY_SHOWN = 20
SHOPS_SHOWN = 30


def program_shops(program: Program) -> list:
    """The approved shops that accept the program's aid by its rules (kinds, partners, area)."""
    try:
        rules = PocketRules.from_dict(program.rules)
    except RulesError:
        return []
    return list(merchants_accepting(rules=rules))


@admin.register(Program)
class ProgramAdmin(ProgramClosingAdmin, RuleDryRunAdmin, FunderScopedAdmin, SimpleHistoryAdmin):
    form = ProgramForm
    list_display = ["name", "funder", "currency", "is_active", "funded", "available"]
    list_filter = ["funder", "is_active"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("funder", "float_account")
            .annotate(funded_total=Coalesce(Sum("fundings__amount"), 0))
        )

    def get_inlines(self, request, obj):
        # A criterion on another aid names one of the program's funder's programs: known once
        # the program exists.
        return [EligibilityCriterionInline] if obj is not None else []

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            main = ["funder", "name", "purpose", "currency"]
        else:
            main = ["funder", "name", "purpose", "currency", "is_active", "funded", "available"]
        fieldsets = [(None, {"fields": main})]
        if obj is not None:
            fieldsets.append(
                (
                    _("The rules as beneficiaries read them"),
                    {
                        "fields": ["rules_in_plain_words", "accepting_shops"],
                        "description": _("As saved last; they change when you save this page."),
                    },
                )
            )
            fieldsets.append(
                (
                    _("Changes to the eligibility criteria"),
                    {"fields": ["criteria_history"], "classes": ["collapse"]},
                )
            )
            if not self.has_change_permission(request, obj):
                return fieldsets
        return (
            fieldsets
            + self.program_sections()
            + self.nonuse_fieldsets()
            + self.dry_run_fieldsets(request, obj)
        )

    def program_sections(self) -> list:
        """The rules as a manager thinks of them: where, what, when, how much (the criteria,
        who, follow as the inline)."""
        # RulesForm's sections, each known by its first field.
        sections = {names[0]: names for _title, names in RulesForm.SECTIONS}

        def fields(*firsts):
            return [name for first in firsts for name in sections[first]]

        return [
            (
                _("Where: the area and the partner shops"),
                {"fields": fields("countries", "merchants_allow")},
            ),
            (
                _("What: the kinds of shops and the products in the basket"),
                {"fields": fields("allow_groups", "products_allow")},
            ),
            (
                _("When: the validity of each grant, days and hours"),
                {
                    "fields": [*VALIDITY_FIELDS, *fields("weekdays")],
                    "description": _(
                        "Every grant, import row and campaign of this program starts with this "
                        "validity; each can change it."
                    ),
                },
            ),
            (_("How much: the spending limits"), {"fields": fields("limit_per_payment")}),
        ]

    def nonuse_fieldsets(self) -> list:
        """The settings of non-use (funders/nonuse.py): whom the daily task reaches out to."""
        fields = ["nonuse_idle_days", "nonuse_expiry_days", "nonuse_unspent_percent"]
        description = _(
            "People found are sent a message with where to spend nearby, their aidant is told, "
            "and they go on the agents' worklist to be called. Leave empty to reach nobody."
        )
        return [(_("People not using their aid"), {"fields": fields, "description": description})]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        # The float account's currency is fixed, and a program's money belongs to its funder.
        return [
            "funder",
            "currency",
            "funded",
            "available",
            "rules_in_plain_words",
            "accepting_shops",
            "criteria_history",
        ]

    @admin.display(description=_("Latest changes"))
    def criteria_history(self, obj: Program) -> SafeString | str:
        """The criteria as each change left them: who, when, what, the newest first."""
        records = (
            EligibilityCriterion.history.filter(program_id=obj.pk)
            .select_related("history_user", "other_program")
            .order_by("-history_date", "-history_id")[:CRITERIA_HISTORY_SHOWN]
        )
        verbs = {"+": _("added"), "~": _("changed"), "-": _("removed")}
        lines = [
            (
                date_format(timezone.localtime(record.history_date), "SHORT_DATETIME_FORMAT"),
                (record.history_user.get_full_name() or record.history_user.get_username())
                if record.history_user
                else "—",
                verbs.get(record.history_type, record.history_type),
                eligibility.describe(record),
            )
            for record in records
        ]
        if not lines:
            return gettext("No criterion yet.")
        return format_html(
            "<ul>{}</ul>",
            format_html_join("", "<li>{} — {} — {}: {}</li>", lines),
        )

    @admin.display(description=_("Funded"))
    def funded(self, obj: Program) -> str:
        # PostgreSQL sums bigints as numeric: back to int before formatting.
        return format_money(int(obj.funded_total), obj.currency)

    @admin.display(description=_("Not yet allocated"))
    def available(self, obj: Program) -> str:
        return format_money(obj.float_account.available, obj.currency)

    @admin.display(description=_("Rules"))
    def rules_in_plain_words(self, obj: Program) -> str:
        try:
            lines = PocketRules.from_dict(obj.rules).describe(currency=obj.currency)
        except RulesError as error:
            return gettext("These rules cannot be applied: %(error)s") % {"error": error}
        if not lines:
            return gettext("No rules: the aid can be spent anywhere, at any time, except as cash.")
        return format_html(
            "<ul>{}</ul>", format_html_join("", "<li>{}</li>", ([line] for line in lines))
        )

    @admin.display(description=_("Shops"))
    def accepting_shops(self, obj: Program) -> str:
        """The approved shops where the aid can be spent today, as the rules last saved say:
        an aid no shop accepts is money nobody can spend."""
        shops = program_shops(obj)
        if not shops:
            return format_html(
                '<p class="warning-note" id="accepting-shops">{}</p>',
                gettext(
                    "No approved shop accepts this aid: the people who get it cannot spend it. "
                    "Widen the area or the kinds of shops, or add partner shops."
                ),
            )
        count = ngettext(
            "%(count)d shop accepts this aid:", "%(count)d shops accept this aid:", len(shops)
        ) % {"count": len(shops)}
        items = (
            (merchant.trade_name, f"{merchant.postcode} {merchant.city}".strip())
            for merchant, _place in shops[:SHOPS_SHOWN]
        )
        more = len(shops) - SHOPS_SHOWN
        return format_html(
            '<div id="accepting-shops"><p><strong>{}</strong></p><ul>{}{}</ul></div>',
            count,
            format_html_join("", "<li>{}, {}</li>", items),
            format_html("<li>{}</li>", gettext("and %(count)d more") % {"count": more})
            if more > 0
            else "",
        )

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        # A new program needs its float account: the service creates both.
        created = program_create(
            funder=obj.funder,
            name=obj.name,
            currency=obj.currency,
            purpose=obj.purpose,
            rules=obj.rules,
            **{name: getattr(obj, name) for name in VALIDITY_FIELDS},
        )
        obj.pk = created.pk
        obj.float_account = created.float_account

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        # Most managers work for one funder: it is chosen for them.
        funders = list(funders_of(request.user, role=Role.MANAGER)[:2])
        if len(funders) == 1:
            initial.setdefault("funder", funders[0].pk)
        return initial

    def program_links(self, obj: Program) -> list[tuple[str, str]]:
        """Where a manager goes next from a program: its dashboard, its grants, granting it."""
        return [
            (
                reverse("admin:funders_programdashboard_change", args=[obj.pk]),
                gettext("Dashboard"),
            ),
            (
                reverse("admin:funders_allocation_changelist") + f"?program__id__exact={obj.pk}",
                gettext("Its grants"),
            ),
            (reverse("admin:wallet_beneficiary_changelist"), gettext("Grant this aid")),
        ]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["program_links"] = self.program_links(obj)
        if obj is not None and self._allowed(request, Role.MANAGER, obj):
            context["fund_url"] = reverse("admin:funders_program_fund", args=[obj.pk])
            context["close_url"] = reverse("admin:funders_program_close", args=[obj.pk])
            if cards_enabled():
                context["topup_url"] = reverse("admin:funders_program_topup", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    # --- funding --------------------------------------------------------------------------------

    # --- the live preview of the rules, in plain words -------------------------------------------

    def preview_view(self, request):
        """The rules of the form as it is being filled, in the words beneficiaries will read,
        and the shops that would accept the aid: the page's script posts the form here on each
        change (backoffice/static/backoffice/program_preview.js). Nothing is saved."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self._allowed(request, Role.MANAGER):
            raise PermissionDenied
        form = RulesForm(request.POST)
        currency = request.POST.get("currency") or "EUR"
        if not form.is_valid() or form.rules is None:
            errors = [str(error) for errors in form.errors.values() for error in errors]
            return TemplateResponse(
                request, "admin/funders/program/_preview.html", {"errors": errors}
            )
        lines = PocketRules.from_dict(form.rules).describe(currency=currency)
        shops = program_shops(Program(rules=form.rules, currency=currency))
        return TemplateResponse(
            request,
            "admin/funders/program/_preview.html",
            {"lines": lines, "shops": len(shops)},
        )

    def get_urls(self):
        preview = path(
            "preview/",
            self.admin_site.admin_view(self.preview_view),
            name="funders_program_preview",
        )
        fund = path(
            "<path:object_id>/fund/",
            self.admin_site.admin_view(self.fund_view),
            name="funders_program_fund",
        )
        topup = path(
            "<path:object_id>/topup/",
            self.admin_site.admin_view(self.topup_view),
            name="funders_program_topup",
        )
        return [preview, fund, topup, *super().get_urls()]

    def topup_view(self, request, object_id):
        """Send money to Stripe's Issuing balance, which card payments draw on, and record it on
        the program: the float and the card balance grow together."""
        program = self.get_scoped_object(request, object_id, role=Role.MANAGER)
        if not cards_enabled():
            raise Http404
        form = TopupForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                funding = program_topup(
                    program=program,
                    amount=form.cleaned_data["amount"],
                    token=form.cleaned_data["token"],
                    by=request.user,
                )
            except DomainError as error:
                form.add_error(None, error.message)
            except stripe.StripeError:
                form.add_error(
                    None,
                    gettext(
                        "Stripe did not take the top-up. Nothing was recorded; try again later."
                    ),
                )
            else:
                self.message_user(
                    request,
                    gettext(
                        "%(amount)s sent to the card balance (%(reference)s) for “%(program)s”."
                    )
                    % {
                        "amount": format_money(funding.amount, program.currency),
                        "reference": funding.reference,
                        "program": program,
                    },
                )
                return redirect("admin:funders_program_change", program.pk)
        return self._fund_page(
            request,
            program,
            form,
            title=gettext("Top up the card balance for “%(program)s”") % {"program": program},
            fields=["amount"],
            topup=True,
        )

    def fund_view(self, request, object_id):
        program = self.get_scoped_object(request, object_id, role=Role.MANAGER)
        if request.method == "POST":
            form = FundingForm(request.POST)
        else:
            form = FundingForm(initial={"token": uuid.uuid4(), "received_on": timezone.localdate()})
        if form.is_valid():
            data = form.cleaned_data
            try:
                funding = program_fund(
                    program=program,
                    amount=data["amount"],
                    # One key per form shown: a second click or a resent page funds once.
                    idempotency_key=f"admin-fund:{program.pk}:{data['token']}",
                    reference=data["reference"],
                    method=data["method"],
                    received_on=data["received_on"],
                    by=request.user,
                )
            except IdempotencyConflict:
                form.add_error(
                    None,
                    gettext(
                        "This page was already sent with another amount, and that funding is "
                        "recorded. To record another funding, open this page again."
                    ),
                )
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(
                    request,
                    gettext("%(amount)s received on %(date)s is recorded on “%(program)s”.")
                    % {
                        "amount": format_money(funding.amount, program.currency),
                        "date": date_format(funding.received_on, "SHORT_DATE_FORMAT"),
                        "program": program,
                    },
                )
                return redirect("admin:funders_program_change", program.pk)
        return self._fund_page(
            request,
            program,
            form,
            title=gettext("Fund “%(program)s”") % {"program": program},
            fields=["amount", "method", "reference", "received_on"],
        )

    def _fund_page(self, request, program, form, *, title: str, fields: list[str], **extra):
        """The page of money coming into a program (a funding, or a top-up of the card
        balance): the form and what the program has available."""
        adminform = helpers.AdminForm(form, [(None, {"fields": fields})], {}, model_admin=self)
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "opts": self.opts,
            "original": program,
            "adminform": adminform,
            "form": form,
            "errors": helpers.AdminErrorList(form, []),
            "available": format_money(program.float_account.available, program.currency),
            "media": self.media + form.media,
            **extra,
        }
        return TemplateResponse(request, "admin/funders/program/fund.html", context)


@admin.register(Funding)
class FundingAdmin(FunderScopedAdmin, SimpleHistoryAdmin):
    """Money funders paid in. Recorded only by the "Fund this program" page, never edited: a
    mistake is corrected by the ledger, not by changing this record."""

    funder_path = "program__funder"
    add_role = None
    change_role = None
    list_display = [
        "received_on",
        "program",
        "amount_display",
        "method",
        "reference",
        "created_by",
        "created_at",
    ]
    list_filter = ["method", "program"]
    list_select_related = ["program", "created_by"]
    search_fields = ["reference", "program__name"]
    date_hierarchy = "received_on"
    fields = [
        "program",
        "amount_display",
        "method",
        "reference",
        "received_on",
        "created_by",
        "created_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("Amount"), ordering="amount")
    def amount_display(self, obj: Funding) -> str:
        return format_money(obj.amount, obj.program.currency)
