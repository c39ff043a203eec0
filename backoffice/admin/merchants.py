"""Admin of merchants (operators only): applications, approval, API keys, card acceptors, and
the queue of card payments at shops no merchant was known by."""

from django import forms
from django.contrib import admin
from django.contrib.admin.widgets import AutocompleteSelect
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.money import format_money
from merchants.acceptors import unknown_card_acceptor_resolve
from merchants.models import ApiKey, CardAcceptor, Merchant, UnknownCardAcceptor
from merchants.services import (
    ApiKeyLimitReached,
    api_key_create,
    merchant_approve,
    merchant_create,
    merchant_suspend,
    merchant_unflag,
)


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = ["name", "mode", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class CardAcceptorInline(admin.TabularInline):
    model = CardAcceptor
    fields = ["network_id", "terminal_id", "how", "created_at", "created_by"]
    readonly_fields = ["how", "created_at", "created_by"]
    extra = 0


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ["trade_name", "city", "postcode", "mcc", "status", "flagged_at"]
    list_filter = ["status", ("flagged_at", admin.EmptyFieldListFilter), "mcc"]
    search_fields = ["trade_name", "legal_name", "siret", "city"]
    readonly_fields = ["status", "approved_at", "flagged_at", "flag_reason"]
    inlines = [CardAcceptorInline, ApiKeyInline]
    actions = ["approve", "suspend", "create_api_key", "unflag"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        # A new merchant needs its payable account: the service creates both.
        fields = {name: form.cleaned_data[name] for name in form.cleaned_data}
        created = merchant_create(**fields)
        obj.pk, obj.payable_account = created.pk, created.payable_account

    def save_formset(self, request, form, formset, change):
        if formset.model is CardAcceptor:
            for acceptor in formset.save(commit=False):
                if acceptor.pk is None:
                    acceptor.how, acceptor.created_by = CardAcceptor.How.ADMIN, request.user
                acceptor.save()
            for acceptor in formset.deleted_objects:
                acceptor.delete()
            return
        super().save_formset(request, form, formset, change)

    @admin.action(description=_("Approve: allow them to take aid payments"))
    def approve(self, request, queryset):
        for merchant in queryset:
            merchant_approve(merchant=merchant)
        count = queryset.count()
        self.message_user(
            request, ngettext("%d merchant approved.", "%d merchants approved.", count) % count
        )

    @admin.action(description=_("Suspend: refuse their payments from now on"))
    def suspend(self, request, queryset):
        for merchant in queryset:
            merchant_suspend(merchant=merchant)
        count = queryset.count()
        self.message_user(
            request, ngettext("%d merchant suspended.", "%d merchants suspended.", count) % count
        )

    @admin.action(description=_("Create an API key (shown once)"))
    def create_api_key(self, request, queryset):
        # The keys are shown on this page only, never in a message: messages travel in a cookie
        # (CookieStorage), which would carry the secret to the browser's storage and back.
        created, refused = [], []
        for merchant in queryset:
            try:
                _key, secret = api_key_create(
                    merchant=merchant, name=str(_("Created in the admin"))
                )
            except ApiKeyLimitReached:
                refused.append(merchant)
            else:
                created.append((merchant, secret))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("API keys created"),
            "created": created,
            "refused": refused,
        }
        response = TemplateResponse(
            request, "admin/merchants/merchant/api_keys_created.html", context
        )
        add_never_cache_headers(response)  # no-store: no cache keeps the page and its keys
        return response

    @admin.action(description=_("Clear the review flag (after review)"))
    def unflag(self, request, queryset):
        for merchant in queryset.filter(flagged_at__isnull=False):
            merchant_unflag(merchant=merchant)


class UnknownCardAcceptorForm(forms.ModelForm):
    """The one thing an operator does with a row of the queue: say "this is merchant X"."""

    merchant = forms.ModelChoiceField(
        queryset=Merchant.objects.all(),
        label=_("This is merchant"),
        # The choice becomes a CardAcceptor's merchant: that field's autocomplete is the one.
        widget=AutocompleteSelect(CardAcceptor._meta.get_field("merchant"), admin.site),
    )
    this_terminal_only = forms.BooleanField(
        label=_("Only this terminal"),
        required=False,
        help_text=_(
            "Leave unticked when every terminal of this merchant id is the merchant's; tick when "
            "the id is shared (a payment facilitator's) and only this terminal is."
        ),
    )

    class Meta:
        model = UnknownCardAcceptor
        fields: list[str] = []

    def clean(self):
        data = super().clean()
        if data.get("merchant") is not None:
            unknown = self.instance
            acceptor = CardAcceptor(
                merchant=data["merchant"],
                network_id=unknown.network_id,
                terminal_id=unknown.terminal_id if data.get("this_terminal_only") else "",
            )
            try:
                acceptor.clean()
            except ValidationError as error:
                # Said of the network id, which is no field of this form: said of the form.
                raise ValidationError(error.error_dict["network_id"]) from None
        return data


@admin.register(UnknownCardAcceptor)
class UnknownCardAcceptorAdmin(admin.ModelAdmin):
    """The operator's queue: shops the card network named that no merchant of ours is known by,
    most recent first. Platform operators only: it lists every funder's beneficiaries' shops."""

    form = UnknownCardAcceptorForm
    list_display = [
        "name", "city", "postcode", "mcc", "network_id", "terminal_id", "count", "total",
        "last_seen",
    ]  # fmt: skip
    search_fields = ["name", "city", "postcode", "network_id"]
    list_filter = ["mcc"]
    readonly_fields = [
        "name", "city", "postcode", "mcc", "network_id", "terminal_id", "count", "total",
        "first_seen", "last_seen",
    ]  # fmt: skip
    fields = [*readonly_fields, "merchant", "this_terminal_only"]

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request):
        return False  # the card channel fills the queue

    @admin.display(description=_("total asked"), ordering="amount")
    def total(self, unknown):
        return format_money(unknown.amount, unknown.currency)

    def save_model(self, request, obj, form, change):
        acceptor = unknown_card_acceptor_resolve(
            unknown=obj,
            merchant=form.cleaned_data["merchant"],
            by=request.user,
            this_terminal_only=form.cleaned_data["this_terminal_only"],
        )
        self.message_user(
            request,
            _("Card payments from %(acceptor)s are now payments at %(merchant)s.")
            % {"acceptor": acceptor, "merchant": acceptor.merchant},
        )

    def response_change(self, request, obj):
        # The row has left the queue: back to the queue.
        return HttpResponseRedirect(reverse("admin:merchants_unknowncardacceptor_changelist"))
