"""Staff register an aidant for a beneficiary who cannot do it in the app: the person most in
need of help may not manage the app. The person's consent is recorded with who registered it;
the aidant then signs in to the app as any aidant does, read-only."""

from django import forms
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from beneficiary_app.services import aidant_authorize, contact_parse
from core.errors import DomainError
from funders.tenancy import Role


class AidantForm(forms.Form):
    name = forms.CharField(label=_("Aidant's name"), max_length=100)
    contact = forms.CharField(
        label=_("Aidant's email or mobile phone"),
        max_length=254,
        help_text=_("They sign in to the app with a code sent there."),
    )
    consent = forms.CharField(
        label=_("How the person consented"),
        max_length=300,
        help_text=_("For example: in person at the office on 3 December, in front of an agent."),
    )
    consent_given = forms.BooleanField(
        label=_("The person agrees that this aidant sees their aid, payments and messages"),
    )

    def clean_contact(self):
        try:
            return contact_parse(self.cleaned_data["contact"])
        except DomainError as error:
            raise forms.ValidationError(error.message, code=error.code) from error


class AidantRegistrationAdmin:
    """The "Register an aidant" page of a beneficiary's admin, for its funder's agents."""

    def get_urls(self):
        view = self.admin_site.admin_view(self.aidant_view)
        return [
            path("<path:object_id>/aidant/", view, name="wallet_beneficiary_aidant"),
            *super().get_urls(),
        ]

    def aidant_view(self, request, object_id):
        beneficiary = self.get_scoped_object(request, object_id, role=Role.AGENT)
        form = AidantForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                aidant, _created = aidant_authorize(
                    wallet=beneficiary.wallet,
                    contact=form.cleaned_data["contact"],
                    name=form.cleaned_data["name"],
                    registered_by=request.user,
                    consent=form.cleaned_data["consent"],
                )
            except DomainError as error:
                form.add_error(None, error.message)
            else:
                self.message_user(
                    request,
                    gettext("%(aidant)s can now see the wallet of %(person)s in the app.")
                    % {"aidant": aidant, "person": beneficiary},
                )
                return redirect("admin:wallet_beneficiary_change", beneficiary.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Register an aidant for %(person)s") % {"person": beneficiary},
            "opts": self.opts,
            "original": beneficiary,
            "form": form,
        }
        return TemplateResponse(request, "admin/wallet/beneficiary/aidant.html", context)
