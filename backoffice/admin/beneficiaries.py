"""Admin of beneficiaries, wallets, cards and payments, as a funder's staff reach them, and the
ledger's records for platform operators. Money moves only through the services: the ledger is
shown, never edited here."""

import json
import logging

from django import forms
from django.contrib import admin, messages
from django.db.models import Q
from django.http import Http404, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import translation
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from backoffice.admin.aidants import AidantRegistrationAdmin
from backoffice.admin.contact_failing import contact_failing_warn
from backoffice.admin.person_file import person_file, phone_search_form
from backoffice.admin.programs import program_shops
from backoffice.admin.scoping import FunderScopedAdmin
from backoffice.contacts import (
    beneficiary_contact_change_confirm,
    beneficiary_contact_change_refuse,
    beneficiary_contact_change_request,
)
from backoffice.forms import GrantForm
from beneficiary_app.api.payments import payment_data
from beneficiary_app.services import card_freeze, card_unfreeze
from core.errors import DomainError
from core.money import format_money
from funders.campaigns import profiles_changed
from funders.models import Enrolment, Funder, Program
from funders.reports import reason_label
from funders.selectors import already_holds_message, program_holders
from funders.services import allocation_grant_many, beneficiary_enrol
from funders.tenancy import Role, funder_ids, funders_of, is_operator
from gdpr.services import BeneficiaryHoldsMoney, beneficiary_data_export, beneficiary_erase
from ledger.models import Account, Transfer
from stripe_issuing.cards import card_cancel, card_issue
from stripe_issuing.client import cards_enabled
from wallet.models import (
    Beneficiary,
    Card,
    ContactChangeRequest,
    Decision,
    Pocket,
    StripeEvent,
    Wallet,
)
from wallet.services import beneficiary_create, wallet_freeze, wallet_unfreeze

logger = logging.getLogger(__name__)

SEES_THE_FUNDERS_POCKETS = "allocation__program__funder__in"
CONTACT_FIELDS = ("email", "phone")


class PocketInline(admin.TabularInline):
    """The pockets of the funders the user works for; another funder's aid stays private."""

    model = Pocket
    fields = ["allocation", "available", "held", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("account", "allocation__program")
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{SEES_THE_FUNDERS_POCKETS: funders_of(request.user)})

    @admin.display(description=_("available (cents)"))
    def available(self, pocket):
        return pocket.account.available

    @admin.display(description=_("held (cents)"))
    def held(self, pocket):
        return pocket.account.pending


class BeneficiaryAddForm(forms.ModelForm):
    funder = forms.ModelChoiceField(queryset=Funder.objects.none(), label=_("Funder"))
    reference = forms.CharField(
        label=_("File number"), max_length=64, required=False, help_text=_("Optional.")
    )

    class Meta:
        model = Beneficiary
        fields = ["first_name", "last_name", "email", "phone", "postcode", "preferred_language"]


class ErasureForm(forms.Form):
    reason = forms.CharField(
        label=_("Why"),
        max_length=300,
        help_text=_(
            "For example: the person's request of 12 May. Do not write anything about "
            "the person here: this text is kept."
        ),
    )
    force = forms.BooleanField(
        label=_("Erase even though money is left"),
        required=False,
        help_text=_(
            "The money stays on the aid, which nobody can spend any more, until the aid ends "
            "or is revoked and the money returns to the program."
        ),
    )


@admin.register(Beneficiary)
class BeneficiaryAdmin(AidantRegistrationAdmin, FunderScopedAdmin):
    """Agents register people and keep their contact details; managers also grant them aid."""

    funder_path = "enrolments__funder"
    add_role = change_role = Role.AGENT
    list_display = ["last_name", "first_name", "postcode", "email", "phone"]
    # A person calling gives their name, their phone number or their file number: see
    # get_search_results for the last two.
    search_fields = ["last_name", "first_name", "email", "postcode"]
    search_help_text = _("Name, e-mail, postcode, mobile phone (06 70 00 00 22) or file number.")
    actions = ["grant_aid", "export_personal_data", "erase_personal_data"]
    change_form_template = "admin/wallet/beneficiary/change_form.html"

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = BeneficiaryAddForm
            form = super().get_form(request, obj, **kwargs)
            form.base_fields["funder"].queryset = funders_of(request.user, role=Role.AGENT)
            return form
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        fields = [*BeneficiaryAddForm.Meta.fields, "consent_given_at"]
        return [*fields, "funder", "reference"] if obj is None else fields

    def get_readonly_fields(self, request, obj=None):
        # An erased person's details are not typed in again.
        if obj is not None and obj.erased_at is not None:
            return [*self.get_fields(request, obj), "erased_at", "erasure_reason"]
        return super().get_readonly_fields(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            # Contacts open the wallet: they change only through the service, which waits for
            # a manager's confirmation when an agent asks. The rest of the form is saved here.
            others = [name for name in form.changed_data if name not in CONTACT_FIELDS]
            if others:
                obj.save(update_fields=others)
            for name in CONTACT_FIELDS:
                if name in form.changed_data:
                    self._change_contact(request, obj, name, form.cleaned_data[name])
            # Where a funder's profile has no postcode, campaigns read this one.
            if "postcode" in form.changed_data:
                for funder in Funder.objects.filter(enrolments__beneficiary=obj):
                    profiles_changed(funder=funder, beneficiary_ids=[obj.pk])
            return
        fields = {name: form.cleaned_data[name] for name in BeneficiaryAddForm.Meta.fields}
        created = beneficiary_create(**fields)
        beneficiary_enrol(
            funder=form.cleaned_data["funder"],
            beneficiary=created,
            reference=form.cleaned_data["reference"],
        )
        profiles_changed(funder=form.cleaned_data["funder"], beneficiary_ids=[created.pk])
        obj.pk = created.pk

    def construct_change_message(self, request, form, formsets, add=False):
        message = super().construct_change_message(request, form, formsets, add)
        if add:
            return message
        # A contact's change has its own row, confirmed or waiting for a manager: the admin's
        # log must not say that the form changed it. Labels as Django logs them, untranslated.
        with translation.override(None):
            contacts = {str(form.fields[name].label) for name in CONTACT_FIELDS}
        kept = []
        for entry in message:
            if "changed" in entry:
                fields = [label for label in entry["changed"]["fields"] if label not in contacts]
                if not fields:
                    continue
                entry = {"changed": {"fields": fields}}
            kept.append(entry)
        return kept

    def _change_contact(self, request, person: Beneficiary, field: str, value) -> None:
        label = Beneficiary._meta.get_field(field).verbose_name
        try:
            asked = beneficiary_contact_change_request(
                beneficiary=person, field=field, value=str(value or ""), by=request.user
            )
        except DomainError as error:
            self.message_user(
                request,
                _("%(contact)s: %(error)s") % {"contact": capfirst(label), "error": error.message},
                messages.ERROR,
            )
            return
        if asked is not None and asked.status == ContactChangeRequest.Status.PENDING:
            self.message_user(
                request,
                _(
                    "%(contact)s: the new one waits for a manager's confirmation. Until then, "
                    "the person keeps the one they had."
                )
                % {"contact": capfirst(label)},
                messages.WARNING,
            )
        elif asked is not None:
            self.message_user(
                request,
                _(
                    "%(contact)s: changed. The person is signed out of the app and told on "
                    "their former contact."
                )
                % {"contact": capfirst(label)},
                messages.SUCCESS,
            )
        # What the page shows next is what is recorded.
        person.refresh_from_db(fields=[field])

    # --- granting aid ---------------------------------------------------------------------------

    def get_urls(self):
        grant = self.admin_site.admin_view(self.grant_view)
        export = self.admin_site.admin_view(self.personal_data_view)
        erase = self.admin_site.admin_view(self.erase_view)
        return [
            path("<path:object_id>/grant/", grant, name="wallet_beneficiary_grant"),
            path(
                "<path:object_id>/personal-data/", export, name="wallet_beneficiary_personal_data"
            ),
            path("<path:object_id>/erase/", erase, name="wallet_beneficiary_erase"),
            path(
                "<path:object_id>/cards/<int:card_id>/<slug:action>/",
                self.admin_site.admin_view(self.card_view),
                name="wallet_beneficiary_card",
            ),
            *super().get_urls(),
        ]

    def grant_view(self, request, object_id):
        beneficiary = self.get_scoped_object(request, object_id, role=Role.MANAGER)
        return self._grant(request, [beneficiary], via_action=False)

    @admin.action(description=_("Grant aid to the selected beneficiaries"), permissions=["manage"])
    def grant_aid(self, request, queryset):
        # Only the people of the funders where the user may grant aid.
        people = list(self.scope(queryset, request, role=Role.MANAGER))
        return self._grant(request, people, via_action=True)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "has_manage_permission": self.has_manage_permission(request),
            "has_erase_permission": self.has_erase_permission(request),
        }
        beneficiary = self.get_object(request, object_id)
        if beneficiary is not None:
            extra_context["file"] = person_file(request, beneficiary)
            if request.method == "GET":
                contact_failing_warn(request, beneficiary)
        return super().change_view(request, object_id, form_url, extra_context)

    def get_search_results(self, request, queryset, search_term):
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if not term:
            return found, may_have_duplicates
        more = Q()
        phone = phone_search_form(term)
        if phone:
            more |= Q(phone=phone)
        # The file number is the funder's own: only the user's funders' numbers are searched.
        references = Enrolment.objects.filter(reference__iexact=term)
        if not is_operator(request.user):
            references = references.filter(funder__in=funder_ids(request.user))
        more |= Q(pk__in=references.values("beneficiary_id"))
        return found | queryset.filter(more), may_have_duplicates

    # --- the person's cards, from their file -------------------------------------------------

    def card_view(self, request, object_id, card_id, action):
        """Freeze or unfreeze one of the person's cards while they are on the phone, through the
        same services as the app's button."""
        beneficiary = self.get_scoped_object(request, object_id, role=Role.AGENT)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        service = {"freeze": card_freeze, "unfreeze": card_unfreeze}.get(action)
        card = Card.objects.filter(pk=card_id, wallet__beneficiary=beneficiary).first()
        if service is None or card is None:
            raise Http404
        try:
            service(card=card)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            done = (
                _("Card %(card)s frozen: card payments are refused until it is unfrozen.")
                if action == "freeze"
                else _("Card %(card)s unfrozen: it pays again.")
            )
            self.message_user(request, done % {"card": card}, messages.SUCCESS)
            self.log_change(request, beneficiary, f"card {card.pk}: {action}")
        return redirect(reverse("admin:wallet_beneficiary_change", args=[beneficiary.pk]))

    def _grant(self, request, beneficiaries: list[Beneficiary], *, via_action: bool):
        programs = Program.objects.filter(funder__in=funders_of(request.user, role=Role.MANAGER))
        confirmed = "grant" in request.POST
        form = GrantForm(request.POST if confirmed else None, programs=programs)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Grant aid"),
            "beneficiaries": beneficiaries,
            "via_action": via_action,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        if confirmed and form.is_valid():
            program = form.cleaned_data["program"]
            holders = program_holders(
                program=program, beneficiary_ids=[b.pk for b in beneficiaries]
            )
            no_shop = not program_shops(program)
            if (holders or no_shop) and not form.cleaned_data["warned"]:
                # Said before anything is granted: who already holds the aid (skipped unless
                # the manager ticks the box), and that no shop would take it.
                data = request.POST.copy()
                data["warned"] = "1"
                form = GrantForm(data, programs=programs)
                form.is_valid()
                context["holders"] = [
                    (person, already_holds_message(holders[person.pk]))
                    for person in beneficiaries
                    if person.pk in holders
                ]
                context["no_shop"] = no_shop
            elif self._grant_now(request, form, beneficiaries, holders):
                if not via_action:
                    return redirect(
                        reverse("admin:wallet_beneficiary_change", args=[beneficiaries[0].pk])
                    )
                return redirect(reverse("admin:wallet_beneficiary_changelist"))
        context["form"] = form
        context["media"] = self.media + form.media
        return TemplateResponse(request, "admin/wallet/beneficiary/grant.html", context)

    def _grant_now(self, request, form, beneficiaries, holders):
        """Grant to everyone chosen, or to those who do not hold the aid yet. False when the
        form has to be shown again with the error."""
        skipped = (
            []
            if form.cleaned_data["grant_again"]
            else [person for person in beneficiaries if person.pk in holders]
        )
        to_grant = [person for person in beneficiaries if person not in skipped]
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d person already holds this aid and was skipped.",
                    "%(count)d people already hold this aid and were skipped.",
                    len(skipped),
                )
                % {"count": len(skipped)},
                messages.WARNING,
            )
        if not to_grant:
            return True
        valid_from, valid_until = form.validity()
        try:
            granted = allocation_grant_many(
                program=form.cleaned_data["program"],
                beneficiaries=to_grant,
                amount=form.cleaned_data["amount"],
                valid_from=valid_from,
                valid_until=valid_until,
                key_prefix=f"grant:{form.cleaned_data['token']}",
                by=request.user,
            )
        except DomainError as error:
            form.add_error(error.field if error.field in form.fields else None, error.message)
            return False
        self.message_user(
            request,
            ngettext(
                "Aid granted to %(count)d beneficiary.",
                "Aid granted to %(count)d beneficiaries.",
                len(granted),
            )
            % {"count": len(granted)},
            messages.SUCCESS,
        )
        return True

    # --- personal data (GDPR) -------------------------------------------------------------------
    # Export: a funder's agents and above, with what their funder may see; the platform
    # operator exports everything. Erasure: an administrator of every funder helping the person
    # (it changes what each of them sees), or the operator. See SECURITY.md.

    erase_template = "admin/wallet/beneficiary/erase.html"

    def has_erase_permission(self, request):
        return self._allowed(request, Role.ADMINISTRATOR)

    def personal_data_view(self, request, object_id):
        beneficiary = self.get_scoped_object(request, object_id, role=Role.AGENT)
        return self._personal_data(request, beneficiary)

    def _personal_data(self, request, beneficiary: Beneficiary) -> HttpResponse:
        funders = None if is_operator(request.user) else funder_ids(request.user, role=Role.AGENT)
        data = beneficiary_data_export(beneficiary=beneficiary, funders=funders)
        logger.info(
            "beneficiary %s: personal data exported by user %s", beneficiary.pk, request.user.pk
        )
        response = HttpResponse(
            json.dumps(data, ensure_ascii=False, indent=2),
            content_type="application/json; charset=utf-8",
        )
        response["Content-Disposition"] = (
            f'attachment; filename="personal-data-{beneficiary.pk}.json"'
        )
        response["Cache-Control"] = "no-store"
        return response

    def _one(self, request, queryset) -> Beneficiary | None:
        people = list(queryset[:2])
        if len(people) != 1:
            self.message_user(request, _("Select one person at a time."), messages.WARNING)
            return None
        return people[0]

    @admin.action(description=_("Export personal data (JSON)"), permissions=["view"])
    def export_personal_data(self, request, queryset):
        beneficiary = self._one(request, queryset)
        if beneficiary is not None:
            return self._personal_data(request, beneficiary)
        return None

    @admin.action(description=_("Erase personal data"), permissions=["erase"])
    def erase_personal_data(self, request, queryset):
        beneficiary = self._one(request, queryset)
        if beneficiary is not None:
            return redirect(reverse("admin:wallet_beneficiary_erase", args=[beneficiary.pk]))
        return None

    def erase_view(self, request, object_id):
        beneficiary = self.get_scoped_object(request, object_id, role=Role.ADMINISTRATOR)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Erase personal data"),
            "beneficiary": beneficiary,
            "original": beneficiary,
        }
        helped_by = set(beneficiary.enrolments.values_list("funder_id", flat=True))
        if not (
            is_operator(request.user)
            or helped_by <= funder_ids(request.user, role=Role.ADMINISTRATOR)
        ):
            context["refused"] = True
            return TemplateResponse(request, self.erase_template, context, status=403)
        confirmed = request.method == "POST"
        form = ErasureForm(request.POST if confirmed else None)
        if confirmed and form.is_valid():
            try:
                erased = beneficiary_erase(
                    beneficiary=beneficiary,
                    by=request.user,
                    reason=form.cleaned_data["reason"],
                    force=form.cleaned_data["force"],
                )
            except BeneficiaryHoldsMoney as error:
                form.add_error(None, error.message)
                context["money_left"] = True
            except DomainError as error:
                form.add_error(error.field if error.field in form.fields else None, error.message)
            else:
                self.log_change(request, erased, gettext("Personal data erased."))
                self.message_user(
                    request,
                    _("Personal data erased. The money history stays, under %(name)s.")
                    % {"name": erased},
                    messages.SUCCESS,
                )
                return redirect(reverse("admin:wallet_beneficiary_change", args=[erased.pk]))
        context["form"] = form
        return TemplateResponse(request, self.erase_template, context)


@admin.register(ContactChangeRequest)
class ContactChangeRequestAdmin(FunderScopedAdmin):
    """Changes of people's email and phone, as asked. A manager of a funder helping the person
    confirms or refuses an agent's (backoffice.contacts); nobody edits one by hand."""

    funder_path = "beneficiary__enrolments__funder"
    add_role = change_role = None
    list_display = [
        "beneficiary",
        "field",
        "old_value",
        "new_value",
        "status",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
    ]
    list_filter = ["status", "field"]
    search_fields = ["beneficiary__last_name", "beneficiary__first_name"]
    fields = [*list_display, "expires_at"]
    actions = ["confirm", "refuse"]
    change_form_template = "admin/wallet/contactchangerequest/change_form.html"

    def has_decide_permission(self, request):
        return self._allowed(request, Role.MANAGER)

    def get_urls(self):
        confirm = self.admin_site.admin_view(self.confirm_view)
        refuse = self.admin_site.admin_view(self.refuse_view)
        return [
            path("<path:object_id>/confirm/", confirm, name="wallet_contactchangerequest_confirm"),
            path("<path:object_id>/refuse/", refuse, name="wallet_contactchangerequest_refuse"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "has_decide_permission": self.has_decide_permission(request),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def confirm_view(self, request, object_id):
        return self._decide(
            request,
            object_id,
            beneficiary_contact_change_confirm,
            _(
                "Change confirmed: the person is signed out of the app and told on their former "
                "contact."
            ),
        )

    def refuse_view(self, request, object_id):
        return self._decide(
            request,
            object_id,
            beneficiary_contact_change_refuse,
            _("Change refused: the person keeps their contact details."),
        )

    def _decide(self, request, object_id, service, done):
        change = self.get_scoped_object(request, object_id, role=Role.MANAGER)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        try:
            service(change=change, by=request.user)
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
        else:
            self.message_user(request, done, messages.SUCCESS)
        return redirect(reverse("admin:wallet_contactchangerequest_change", args=[change.pk]))

    def _decide_many(self, request, queryset, service):
        decided = refused = 0
        for change in self.scope(queryset, request, role=Role.MANAGER):
            try:
                service(change=change, by=request.user)
            except DomainError:
                refused += 1
            else:
                decided += 1
        self.message_user(
            request,
            ngettext("%(count)d change decided.", "%(count)d changes decided.", decided)
            % {"count": decided},
            messages.SUCCESS,
        )
        if refused:
            self.message_user(
                request,
                ngettext(
                    "%(count)d change was left as it was: it was already decided or expired.",
                    "%(count)d changes were left as they were: already decided or expired.",
                    refused,
                )
                % {"count": refused},
                messages.WARNING,
            )

    @admin.action(description=_("Confirm the selected changes"), permissions=["decide"])
    def confirm(self, request, queryset):
        self._decide_many(request, queryset, beneficiary_contact_change_confirm)

    @admin.action(description=_("Refuse the selected changes"), permissions=["decide"])
    def refuse(self, request, queryset):
        self._decide_many(request, queryset, beneficiary_contact_change_refuse)


@admin.register(Wallet)
class WalletAdmin(FunderScopedAdmin):
    """Agents help people: freezing a wallet stops every payment while a lost card is found."""

    funder_path = "beneficiary__enrolments__funder"
    change_role = Role.AGENT
    add_role = None
    list_display = ["beneficiary", "is_frozen", "created_at"]
    list_filter = ["is_frozen"]
    search_fields = ["beneficiary__last_name", "beneficiary__email"]
    readonly_fields = ["beneficiary", "is_frozen", "frozen_reason", "created_at"]
    inlines = [PocketInline]
    actions = ["freeze", "unfreeze", "issue_virtual_card", "issue_physical_card"]

    @admin.action(description=_("Freeze the selected wallets"), permissions=["change"])
    def freeze(self, request, queryset):
        for wallet in queryset:
            wallet_freeze(wallet=wallet, reason=_("Frozen by %(user)s") % {"user": request.user})
        self.message_user(request, _("Wallets frozen: payments are refused."), messages.SUCCESS)

    @admin.action(description=_("Unfreeze the selected wallets"), permissions=["change"])
    def unfreeze(self, request, queryset):
        for wallet in queryset:
            wallet_unfreeze(wallet=wallet)
        self.message_user(request, _("Wallets unfrozen."), messages.SUCCESS)

    def _issue(self, request, queryset, kind):
        if not cards_enabled():
            self.message_user(
                request, _("Payment cards are not available on this platform."), messages.ERROR
            )
            return
        wallets = list(self.scope(queryset, request, role=Role.MANAGER))
        for wallet in wallets:
            card_issue(wallet=wallet, kind=kind)
        self.message_user(
            request,
            ngettext(
                "%(count)d card ordered: it is ready in a few moments.",
                "%(count)d cards ordered: they are ready in a few moments.",
                len(wallets),
            )
            % {"count": len(wallets)},
            messages.SUCCESS,
        )

    @admin.action(description=_("Issue a virtual card"), permissions=["manage"])
    def issue_virtual_card(self, request, queryset):
        self._issue(request, queryset, Card.Kind.VIRTUAL)

    @admin.action(description=_("Issue a physical card"), permissions=["manage"])
    def issue_physical_card(self, request, queryset):
        self._issue(request, queryset, Card.Kind.PHYSICAL)


class ReadOnlyScopedAdmin(FunderScopedAdmin):
    add_role = change_role = delete_role = None


@admin.register(Card)
class CardAdmin(ReadOnlyScopedAdmin):
    """Agents freeze, unfreeze and cancel cards for the people they help; Stripe follows."""

    funder_path = "wallet__beneficiary__enrolments__funder"
    # A card is named by its last four digits, as the person reads it on the card: its
    # reference is an identifier payments were made with, which staff have no use for.
    list_display = ["__str__", "wallet", "kind", "status"]
    fields = readonly_fields = ["wallet", "kind", "status", "last4", "created_at"]
    list_filter = ["status", "kind"]
    actions = ["freeze", "unfreeze", "cancel"]

    def has_act_permission(self, request):
        return self._allowed(request, Role.AGENT)

    def _apply(self, request, queryset, service, done):
        refused = 0
        for card in self.scope(queryset, request, role=Role.AGENT):
            try:
                service(card=card)
            except DomainError:
                refused += 1
        self.message_user(request, done, messages.SUCCESS)
        if refused:
            self.message_user(
                request,
                ngettext(
                    "%(count)d card was left as it was: it is closed or not active yet.",
                    "%(count)d cards were left as they were: closed or not active yet.",
                    refused,
                )
                % {"count": refused},
                messages.WARNING,
            )

    @admin.action(description=_("Freeze the selected cards"), permissions=["act"])
    def freeze(self, request, queryset):
        self._apply(request, queryset, card_freeze, _("Cards frozen: card payments are refused."))

    @admin.action(description=_("Unfreeze the selected cards"), permissions=["act"])
    def unfreeze(self, request, queryset):
        self._apply(request, queryset, card_unfreeze, _("Cards unfrozen."))

    @admin.action(description=_("Cancel the selected cards for good"), permissions=["act"])
    def cancel(self, request, queryset):
        self._apply(request, queryset, card_cancel, _("Cards cancelled: they can never be used."))


class ReasonFilter(admin.SimpleListFilter):
    """The refusal reasons in words ("Not enough money left on the aid"), not their codes; an
    approved payment has none and is not a choice here (the outcome filter finds it)."""

    title = _("reason")
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        codes = (
            model_admin.get_queryset(request)
            .exclude(reason="")
            .order_by()
            .values_list("reason", flat=True)
            .distinct()
        )
        return sorted(((code, reason_label(code)) for code in codes), key=lambda c: c[1])

    def queryset(self, request, queryset):
        return queryset.filter(reason=self.value()) if self.value() else queryset


@admin.register(Decision)
class DecisionAdmin(ReadOnlyScopedAdmin):
    """Payments: a funder sees those its pockets paid, and the declined attempts of the people
    it helps (a decline is what its agents are asked about). Amounts in euros, the reason in
    the words the person read; the raw code and details folded under "Technical details"; the
    idempotency key and fingerprint, which only the API uses, never shown."""

    list_display = [
        "decided_at",
        "merchant",
        "amount_display",
        "approved_display",
        "status",
        "reason_label",
        "livemode",
    ]
    list_filter = ["status", "channel", ReasonFilter, "livemode"]
    list_select_related = ["merchant"]
    search_fields = ["reference"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "decided_at",
                    "wallet",
                    "merchant",
                    "channel",
                    "amount_display",
                    "approved_display",
                    "status",
                    "reason_in_words",
                ]
            },
        ),
        (
            _("Technical details"),
            {
                "classes": ["collapse"],
                "fields": [
                    "reference",
                    "reason",
                    "reason_pocket",
                    "details_json",
                    "merchant_reference",
                    "card",
                ],
            },
        ),
    ]
    readonly_fields = [
        "decided_at",
        "wallet",
        "merchant",
        "channel",
        "amount_display",
        "approved_display",
        "status",
        "reason_in_words",
        "reference",
        "reason",
        "reason_pocket",
        "details_json",
        "merchant_reference",
        "card",
    ]

    def scope_filter(self, funder_ids):
        return Q(holds__pocket__allocation__program__funder__in=funder_ids) | Q(
            status=Decision.Status.DECLINED,
            wallet__pockets__allocation__program__funder__in=funder_ids,
        )

    @admin.display(description=_("amount asked"), ordering="amount")
    def amount_display(self, decision: Decision) -> str:
        return format_money(decision.amount, decision.currency)

    @admin.display(description=_("amount approved"), ordering="approved_amount")
    def approved_display(self, decision: Decision) -> str:
        return format_money(decision.approved_amount, decision.currency)

    @admin.display(description=_("reason"), ordering="reason")
    def reason_label(self, decision: Decision) -> str:
        return reason_label(decision.reason) if decision.reason else "—"

    @admin.display(description=_("Why, as the person read it"))
    def reason_in_words(self, decision: Decision) -> str:
        reason = payment_data(decision)["reason"]
        return reason["message"] if reason else "—"

    @admin.display(description=_("reason details"))
    def details_json(self, decision: Decision) -> str:
        return format_html(
            "<pre>{}</pre>", json.dumps(decision.details, ensure_ascii=False, indent=2)
        )


@admin.register(Account)
class AccountAdmin(ReadOnlyScopedAdmin):
    operators_only = True
    list_display = ["code", "name", "kind", "currency", "guarded", "balance", "pending"]
    list_filter = ["kind", "currency"]
    search_fields = ["code", "name"]


@admin.register(Transfer)
class TransferAdmin(ReadOnlyScopedAdmin):
    operators_only = True
    list_display = ["pk", "created_at", "kind", "amount", "currency", "is_pending"]
    list_filter = ["kind", "is_pending"]


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyScopedAdmin):
    """Every Stripe event as received and what was done with it; failed ones are replayed with
    `manage.py stripe replay_failed`."""

    operators_only = True
    list_display = ["received_at", "type", "stripe_id", "result", "outcome", "attempts"]
    list_filter = ["result", "type", "livemode"]
    search_fields = ["stripe_id", "outcome"]
    date_hierarchy = "received_at"
