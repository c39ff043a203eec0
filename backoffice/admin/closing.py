"""Closing a program (funders/closing.py) in the back office: "Close this program" on its page
for its funder's managers, and the closure's page with the closing statement and the SEPA
credit transfer file (pain.001) that pays the float back to the funder."""

from datetime import date

from django import forms
from django.contrib import admin
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from backoffice.admin.scoping import FunderScopedAdmin
from core.errors import DomainError
from core.money import format_money
from funders.closing import closing_statement, program_close
from funders.models import ProgramClosure
from funders.tenancy import Role
from merchants.sepa import SepaPayment, debtor_configured, iban_compact, pain001


def closure_sepa_file(closure: ProgramClosure, *, execution_date: date) -> tuple[bytes, str]:
    """The pain.001 that pays the closure's amount from the operator's account to the funder's;
    validated against the schema by sepaxml. Returns the XML and its message id."""
    program = closure.program
    payment = SepaPayment(
        name=program.funder.name,
        iban=iban_compact(closure.iban),
        bic=closure.bic,
        amount=closure.amount_returned or 0,
        currency=program.currency,
        end_to_end_id=f"CLOSE-{program.pk}",
        description=gettext("Unspent aid returned: %(program)s") % {"program": program.name},
    )
    return pain001(payments=[payment], execution_date=execution_date)


class CloseForm(forms.Form):
    confirm = forms.BooleanField(
        label=_(
            "I understand: no new grant can be made, and once every aid has ended, what is "
            "left is paid back to the funder's bank account."
        )
    )


class ProgramClosingAdmin:
    """The "Close this program" page of a program's admin."""

    def get_urls(self):
        view = self.admin_site.admin_view(self.close_view)
        return [
            path("<path:object_id>/close/", view, name="funders_program_close"),
            *super().get_urls(),
        ]

    def close_view(self, request, object_id):
        program = self.get_scoped_object(request, object_id, role=Role.MANAGER)
        form = CloseForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                closure = program_close(program=program, by=request.user)
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                return redirect("admin:funders_programclosure_change", closure.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Close “%(program)s”") % {"program": program},
            "opts": self.opts,
            "original": program,
            "form": form,
        }
        return TemplateResponse(request, "admin/funders/program/close.html", context)


@admin.register(ProgramClosure)
class ProgramClosureAdmin(FunderScopedAdmin):
    funder_path = "program__funder"
    view_role = Role.MANAGER
    add_role = change_role = None
    list_display = ["program", "closed_at", "returned_at", "amount_display"]
    fields = [
        "program",
        "closed_by",
        "closed_at",
        "returned_at",
        "amount_display",
        "iban",
        "statement",
        "sepa_file",
    ]
    readonly_fields = fields

    @admin.display(description=_("paid back"))
    def amount_display(self, closure: ProgramClosure) -> str:
        if closure.amount_returned is None:
            return gettext("Not yet: some aid is still running.")
        return format_money(closure.amount_returned, closure.program.currency)

    @admin.display(description=_("closing statement"))
    def statement(self, closure: ProgramClosure):
        s = closing_statement(program=closure.program)
        money = lambda amount: format_money(amount, s.currency)  # noqa: E731
        lines = [
            (gettext("Funded"), money(s.funded)),
            (gettext("Granted"), money(s.granted)),
            *(
                (gettext("Spent at %(shop)s") % {"shop": shop}, money(amount))
                for shop, amount in s.spent_by_shop.items()
            ),
            (gettext("Refunded by shops"), money(s.refunded)),
            (gettext("Expired"), money(s.expired)),
            (gettext("Revoked"), money(s.revoked)),
            (gettext("Paid back to the funder"), money(s.returned)),
            (gettext("Still on the program"), money(s.float_left + s.pockets_left)),
        ]
        verdict = (
            gettext("Balances to the cent against the ledger.")
            if s.balances
            else gettext("Does not balance against the ledger: tell the platform's operator.")
        )
        return format_html(
            "<table>{}</table><p>{}</p>",
            format_html_join("", "<tr><th scope='row'>{}</th><td>{}</td></tr>", lines),
            verdict,
        )

    @admin.display(description=_("SEPA credit transfer"))
    def sepa_file(self, closure: ProgramClosure):
        if not closure.amount_returned or not debtor_configured():
            return "—"
        return format_html(
            '<a class="button" href="{}">{}</a>',
            f"../../{closure.pk}/sepa/",
            gettext("Download the pain.001 file"),
        )

    def get_urls(self):
        view = self.admin_site.admin_view(self.sepa_view)
        return [
            path("<path:object_id>/sepa/", view, name="funders_programclosure_sepa"),
            *super().get_urls(),
        ]

    def sepa_view(self, request, object_id):
        closure = self.get_scoped_object(request, object_id, role=Role.MANAGER)
        if not closure.amount_returned or not debtor_configured():
            return redirect("admin:funders_programclosure_change", closure.pk)
        content, message_id = closure_sepa_file(closure, execution_date=timezone.localdate())
        response = HttpResponse(content, content_type="application/xml")
        response["Content-Disposition"] = f'attachment; filename="{message_id}.xml"'
        return response
