"""Funders and their staff. A funder's administrators invite, change and remove its staff;
platform operators create funders."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminFileWidget
from django.core.exceptions import ValidationError
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from backoffice.admin.scoping import FunderScopedAdmin
from backoffice.second_factor import second_factor_reset
from beneficiary_app.web.views import funder_logo_url
from core.errors import DomainError
from core.validators import email_canonical
from funders.models import Funder, Membership
from funders.services import membership_change_role, membership_remove, staff_invite
from funders.tenancy import Role, is_operator


class _ServedLogo:
    """The stored logo as the file input's template shows it: its name, and the URL where the
    app serves it."""

    def __init__(self, logo, url: str) -> None:
        self.name = logo.name
        self.url = url

    def __str__(self) -> str:
        return self.name


class FunderLogoWidget(AdminFileWidget):
    """The admin's file input, whose "Currently:" link opens the logo where the app serves it
    to anyone (beneficiary_app.web.views.funder_logo), from whatever storage keeps it: the
    storage's own URL, /media/... on the file system, is served by nothing."""

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        if context["widget"]["is_initial"]:
            context["widget"]["value"] = _ServedLogo(value, funder_logo_url(value.instance))
        return context


@admin.register(Funder)
class FunderAdmin(FunderScopedAdmin):
    funder_path = "pk"
    change_role = Role.ADMINISTRATOR
    list_display = ["name", "kind", "siret"]
    search_fields = ["name", "siret"]

    def has_add_permission(self, request):
        return is_operator(request.user)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "logo":
            kwargs["widget"] = FunderLogoWidget
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if obj is not None and not self.has_change_permission(request, obj):
            # Read only, the admin would link the logo to the storage's URL, as the widget.
            return ["logo_link" if field == "logo" else field for field in fields]
        return fields

    @admin.display(description=_("logo"))
    def logo_link(self, funder: Funder) -> str:
        url = funder_logo_url(funder)
        return format_html('<a href="{}">{}</a>', url, funder.logo.name) if url else "-"


class StaffInviteForm(forms.ModelForm):
    email = forms.EmailField(label=_("Email"))
    first_name = forms.CharField(label=_("First name"), max_length=150)
    last_name = forms.CharField(label=_("Last name"), max_length=150)

    class Meta:
        model = Membership
        fields = ["funder", "role"]

    def clean_email(self):
        # The form staff_invite finds people in, refused here with the field's own message.
        return email_canonical(self.cleaned_data["email"])


@admin.register(Membership)
class MembershipAdmin(FunderScopedAdmin, SimpleHistoryAdmin):
    view_role = add_role = change_role = delete_role = Role.ADMINISTRATOR
    list_display = ["user", "email", "funder", "role", "created_at"]
    list_filter = ["funder", "role"]
    search_fields = ["user__email", "user__last_name", "user__first_name"]
    # Removal is one person at a time, through the service: no bulk deletion.
    actions = ["second_factor_reset_action"]

    @admin.display(description=_("email"))
    def email(self, membership):
        return membership.user.email

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Reset the second factor (lost phone)"))
    def second_factor_reset_action(self, request, queryset):
        # The queryset is that of the funders where the person is an administrator
        # (view_role): a colleague of another funder cannot be chosen.
        for membership in queryset.select_related("user"):
            try:
                second_factor_reset(user=membership.user, by=request.user)
            except DomainError as error:
                self.message_user(request, f"{membership.user}: {error.message}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("%(person)s sets up a new second factor at their next sign-in.")
                    % {"person": membership.user},
                    messages.SUCCESS,
                )

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = StaffInviteForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["email", "first_name", "last_name", "funder", "role"]
        return ["user", "funder", "role", "created_at"]

    def get_readonly_fields(self, request, obj=None):
        return ["user", "funder", "created_at"] if obj else []

    def save_model(self, request, obj, form, change):
        try:
            if change:
                saved = membership_change_role(membership=obj, role=form.cleaned_data["role"])
            else:
                saved = staff_invite(
                    funder=form.cleaned_data["funder"],
                    email=form.cleaned_data["email"],
                    first_name=form.cleaned_data["first_name"],
                    last_name=form.cleaned_data["last_name"],
                    role=form.cleaned_data["role"],
                    site_url=request.build_absolute_uri("/"),
                )
        except DomainError as error:
            # Shown on the form, not as a crash: the admin re-renders it with the message.
            raise ValidationError(error.message) from error
        obj.pk, obj.user = saved.pk, saved.user

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), messages.ERROR)
            return self.response_post_save_change(request, None)

    def delete_model(self, request, obj):
        membership_remove(membership=obj)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as error:
            self.message_user(request, str(error.message), messages.ERROR)
            return self.response_post_save_change(request, None)
