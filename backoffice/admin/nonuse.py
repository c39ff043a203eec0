"""The agents' worklist of people not using their aid (funders/nonuse.py): whom to call, their
phone from the funder's file, and each call's outcome, kept as the episode's history. Agents of
the program's funder work it; nobody else sees it."""

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from backoffice.admin.scoping import FunderScopedAdmin
from core.money import format_money
from funders.models import Enrolment, NonUseCall, NonUseEpisode
from funders.nonuse import nonuse_call_record
from funders.tenancy import Role


class CallForm(forms.ModelForm):
    class Meta:
        model = NonUseCall
        fields = ["outcome", "note"]


class NonUseCallInline(admin.StackedInline):
    """The calls of an episode: one is added, none is changed or removed."""

    model = NonUseCall
    form = CallForm
    extra = 1
    fields = ["outcome", "note", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]
    verbose_name = _("call")
    verbose_name_plural = _("calls: add the one you just made")

    def _episode_admin(self):
        return self.admin_site._registry[NonUseEpisode]

    def has_view_permission(self, request, obj=None):
        return self._episode_admin().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._episode_admin().has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(NonUseEpisode)
class NonUseEpisodeAdmin(FunderScopedAdmin):
    funder_path = "program__funder"
    view_role = Role.AGENT
    add_role = None  # episodes are opened by the daily task only
    change_role = Role.AGENT  # agents record their calls
    list_display = [
        "beneficiary",
        "file_number",
        "phone",
        "program",
        "kind",
        "unspent_display",
        "opened_at",
        "closed_at",
        "status",
        "last_outcome",
    ]
    list_filter = ["status", "kind", "program"]
    list_select_related = ["beneficiary", "program"]
    search_fields = ["beneficiary__last_name", "beneficiary__first_name"]
    inlines = [NonUseCallInline]
    fields = [
        "beneficiary",
        "file_number",
        "phone",
        "program",
        "kind",
        "unspent_display",
        "opened_at",
        "closed_at",
        "aidant_told",
        "status",
    ]
    readonly_fields = fields

    @admin.display(description=_("file number"))
    def file_number(self, episode: NonUseEpisode) -> str:
        enrolment = Enrolment.objects.filter(
            funder=episode.program.funder_id, beneficiary=episode.beneficiary_id
        ).first()
        return (enrolment.reference if enrolment else "") or "—"

    @admin.display(description=_("phone"))
    def phone(self, episode: NonUseEpisode) -> str:
        # The number the funder's file holds: the person's own, as registered.
        phone = episode.beneficiary.phone
        return phone.as_national if phone else "—"

    @admin.display(description=_("unspent when found"), ordering="unspent")
    def unspent_display(self, episode: NonUseEpisode) -> str:
        return format_money(episode.unspent, episode.program.currency)

    @admin.display(description=_("last call"))
    def last_outcome(self, episode: NonUseEpisode) -> str:
        call = episode.calls.order_by("-created_at", "-pk").first()
        return call.get_outcome_display() if call else "—"

    def save_formset(self, request, form, formset, change):
        # Calls go through the service, which also takes the person off the list when settled.
        for call_form in formset.forms:
            if call_form.has_changed() and call_form.instance.pk is None:
                nonuse_call_record(
                    episode=form.instance,
                    outcome=call_form.cleaned_data["outcome"],
                    note=call_form.cleaned_data.get("note", ""),
                    by=request.user,
                )
        # What the admin's change message reads: the calls are in their own history.
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
