"""Rule dry runs on the page of a program and of an allocation: "Test these rules" replays the
program's past payments (or those of the allocation's pocket) with the rules typed in the form
(funders/dry_runs.py) and shows what would flip; the page then saves a rule change only when it
names the finished dry run of exactly those rules that the manager read ("Save these rules" on
the result reopens the form with them).

Kept apart from the program's and the allocation's own forms and pages (backoffice/admin/
programs.py, allocations.py), which these mixins extend: their forms mix in DryRunConfirmation
and their admins RuleDryRunAdmin."""

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.money import format_money
from engine import categories
from funders import dry_runs
from funders.models import Allocation, Program, RuleDryRun
from funders.reports import reason_label
from funders.tenancy import Role

DRY_RUN_BUTTON = "_dry_run"
MAX_WINDOW_DAYS = 366


def subject(obj: Program | Allocation) -> tuple[Program, Allocation | None]:
    """The program whose payments a dry run replays, and the allocation whose overrides it
    tests (None: the program's own rules)."""
    if isinstance(obj, Allocation):
        return obj.program, obj
    return obj, None


class DryRunConfirmation(forms.Form):
    """The two fields of a rule change's dry run: the window to replay, and the dry run the
    change confirms. `user` and `dry_running` are set by RuleDryRunAdmin.get_form."""

    dry_run_days = forms.IntegerField(
        label=_("Days of past payments to test the rules on"),
        min_value=1,
        max_value=MAX_WINDOW_DAYS,
        initial=dry_runs.DEFAULT_WINDOW_DAYS,
        required=False,
        help_text=_("Used by “Test these rules”: the payments of that many days, up to today."),
    )
    confirms_dry_run = forms.CharField(
        label=_("Dry run this change confirms"), required=False, widget=forms.HiddenInput
    )
    user = None
    dry_running = False

    @staticmethod
    def tested_rules(instance, rules: dict) -> dict:
        """The rules document the form shows for a dry run's rules (the same, here)."""
        return rules

    def clean(self):
        cleaned = super().clean()
        rules = getattr(self, "rules", None)
        instance = getattr(self, "instance", None)
        if self.dry_running or rules is None or instance is None or instance.pk is None:
            return cleaned
        program, allocation = subject(instance)
        if rules != instance.rules and not dry_runs.confirmable(
            program=program,
            allocation=allocation,
            dry_run_id=cleaned.get("confirms_dry_run"),
            rules=rules,
            user=self.user,
        ):
            self.add_error(
                None,
                forms.ValidationError(
                    _(
                        "The rules changed: test them first with “Test these rules”, read what "
                        "they would have done, then save them from the dry run's page."
                    ),
                    code="dry_run_required",
                ),
            )
        return cleaned


class RuleDryRunAdmin:
    """The dry run's views on the admin of a program or of an allocation. The form's `rules`
    are what the dry run tests and the change saves: the program's rules, or the allocation's
    overrides."""

    def dry_run_fieldsets(self, request, obj) -> list:
        if obj is None or not self.has_change_permission(request, obj):
            return []
        return [
            (
                _("Test the rules before saving them"),
                {"fields": ["dry_run_days", "confirms_dry_run"]},
            )
        ]

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        to_confirm = self._dry_run_to_confirm(request, obj)

        class Form(form_class):
            def __init__(self, *args, **form_kwargs):
                if to_confirm is not None and "data" not in form_kwargs and not args:
                    form_kwargs["initial_rules"] = form_class.tested_rules(
                        form_kwargs.get("instance"), to_confirm.rules
                    )
                super().__init__(*args, **form_kwargs)
                self.user = request.user
                self.dry_running = DRY_RUN_BUTTON in request.POST
                if to_confirm is not None:
                    self.initial["confirms_dry_run"] = to_confirm.pk

        return Form

    def _dry_run_to_confirm(self, request, obj) -> RuleDryRun | None:
        """The dry run named by ?dry_run= that the user may save from (see confirmable)."""
        if obj is None or request.method != "GET":
            return None
        program, allocation = subject(obj)
        return dry_runs.confirmable(
            program=program,
            allocation=allocation,
            dry_run_id=request.GET.get("dry_run"),
            rules=self._dry_run_rules(request.GET.get("dry_run")),
            user=request.user,
        )

    @staticmethod
    def _dry_run_rules(dry_run_id) -> dict | None:
        if not str(dry_run_id or "").isdigit():
            return None
        return RuleDryRun.objects.filter(pk=dry_run_id).values_list("rules", flat=True).first()

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST" and DRY_RUN_BUTTON in request.POST and object_id:
            started = self._dry_run_start(request, object_id)
            if started is not None:
                return started
        extra_context = {**(extra_context or {}), "dry_run_button": DRY_RUN_BUTTON}
        if object_id and request.method == "GET":
            obj = self.get_object(request, object_id)
            to_confirm = self._dry_run_to_confirm(request, obj)
            if to_confirm is not None:
                extra_context["confirming_dry_run"] = to_confirm
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _dry_run_start(self, request, object_id):
        """Start a dry run of the rules typed in the form, or None to show the form's errors."""
        obj = self.get_scoped_object(request, object_id, role=Role.MANAGER)
        if not self.has_change_permission(request, obj):  # an ended allocation, say
            raise PermissionDenied
        form = self.get_form(request, obj, change=True)(request.POST, request.FILES, instance=obj)
        form.is_valid()
        if form.rules is None or "dry_run_days" in form.errors:
            return None
        program, allocation = subject(obj)
        dry_run = dry_runs.rule_dry_run_start(
            program=program,
            allocation=allocation,
            rules=form.rules,
            by=request.user,
            days=form.cleaned_data.get("dry_run_days") or dry_runs.DEFAULT_WINDOW_DAYS,
        )
        return redirect(self._dry_run_url_name(), obj.pk, dry_run.pk)

    def _dry_run_url_name(self) -> str:
        return f"admin:{self.opts.app_label}_{self.opts.model_name}_dry_run"

    def get_urls(self):
        view = path(
            "<path:object_id>/dry-run/<int:dry_run_id>/",
            self.admin_site.admin_view(self.dry_run_view),
            name=self._dry_run_url_name().removeprefix("admin:"),
        )
        return [view, *super().get_urls()]

    def dry_run_view(self, request, object_id, dry_run_id):
        obj = self.get_scoped_object(request, object_id, role=Role.MANAGER)
        program, allocation = subject(obj)
        dry_run = RuleDryRun.objects.filter(
            pk=dry_run_id, program=program, allocation=allocation
        ).first()
        if dry_run is None:
            raise Http404
        if dry_run.created_by_id == request.user.pk:
            dry_runs.rule_dry_run_seen(dry_run=dry_run)
        change = f"admin:{self.opts.app_label}_{self.opts.model_name}_change"
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Dry run of new rules for “%(program)s”") % {"program": obj},
            "opts": self.opts,
            "original": obj,
            "dry_run": dry_run,
            "finished": dry_run.status in (RuleDryRun.Status.DONE, RuleDryRun.Status.FAILED),
            "kinds": _kinds(dry_run.result, program.currency) if dry_run.result else [],
            "confirm_url": (
                reverse(change, args=[obj.pk]) + f"?dry_run={dry_run.pk}"
                if dry_run.seen_at
                else None
            ),
        }
        return TemplateResponse(request, "admin/funders/program/dry_run.html", context)


def _kinds(result: dict, currency: str) -> list[dict]:
    """The result as the page shows it: each kind of flip with its tables in words."""
    titles = {
        dry_runs.APPROVED_TO_REFUSED: _("Payments approved then that would be refused"),
        dry_runs.REFUSED_TO_APPROVED: _("Payments refused then that would be approved"),
    }
    headings = {
        "shop": _("By shop"),
        "category": _("By kind of shop"),
        "commune": _("By commune"),
        "reason": _("By reason"),
    }
    kinds = []
    for kind in dry_runs.KINDS:
        flips = result["flips"][kind]
        tables = []
        for name, heading in headings.items():
            rows = []
            for line in flips["by"].get(name, []):
                *key, count, amount, people = line
                rows.append((_label(name, key), count, format_money(amount, currency), people))
            tables.append({"heading": heading, "rows": rows})
        kinds.append(
            {
                "title": titles[kind],
                "count": flips["count"],
                "amount": format_money(flips["amount"], currency),
                "people": flips["people"],
                "tables": tables,
                "samples": [
                    {
                        **sample,
                        "amount": format_money(sample["amount"], currency),
                        "reason_label": reason_label(sample["reason"]),
                    }
                    for sample in flips["samples"]
                ],
            }
        )
    return kinds


def _label(name: str, key: list) -> str:
    if name == "shop":
        return key[1]
    if name == "category":
        return str(categories.GROUP_LABELS.get(key[0], key[0]))
    if name == "reason":
        return reason_label(key[0])
    return key[0] or "—"
