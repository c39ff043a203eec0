"""The base of every admin page a funder's staff reach: each queryset, form choice, filter,
action and object is limited to the funders where the user holds the role it needs.

A model admin names the lookup from its model to the Funder (`funder_path`) and the role each
kind of access needs; the rest follows. An object outside the user's funders answers 404, as if
it did not exist; one they may see but not change answers 403."""

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import models
from django.db.models import Model, Q, QuerySet
from django.http import Http404, HttpRequest

from backoffice.forms import AccessibleSplitDateTime
from funders.models import Funder
from funders.tenancy import Role, funder_ids, has_role, is_operator


class FunderScopedAdmin(admin.ModelAdmin):
    # Date-and-time fields with their two boxes named for screen readers.
    formfield_overrides = {
        models.DateTimeField: {
            "form_class": forms.SplitDateTimeField,
            "widget": AccessibleSplitDateTime,
        }
    }
    funder_path: str = "funder"  # lookup from the model to its funder; "pk" for Funder itself
    view_role: str | None = Role.AGENT
    add_role: str | None = Role.MANAGER
    change_role: str | None = Role.MANAGER
    delete_role: str | None = None  # money records are never deleted, by anyone
    operators_only: bool = False  # platform settings that no funder's staff reach

    # --- querysets ------------------------------------------------------------------------------

    def scope_filter(self, funder_ids: set[int]) -> Q:
        """The rows that belong to these funders. Override for a rule a path cannot say."""
        return Q(**{f"{self.funder_path}__in": funder_ids})

    def scope(
        self, queryset: QuerySet, request: HttpRequest, *, role: str | None = None
    ) -> QuerySet:
        """`queryset` limited to the funders where the user holds `role` (default: view)."""
        if is_operator(request.user):
            return queryset
        if self.operators_only:
            return queryset.none()
        ids = funder_ids(request.user, role=role or self.view_role)
        # A subquery on primary keys: a path through a many-valued relation ("enrolments")
        # would otherwise repeat rows.
        inside = self.model._default_manager.filter(self.scope_filter(ids))
        return queryset.filter(pk__in=inside.values("pk"))

    def get_queryset(self, request):
        return self.scope(super().get_queryset(request), request)

    def get_scoped_object(self, request: HttpRequest, object_id, *, role: str) -> Model:
        """The object for a custom admin view: 404 outside the user's funders, 403 where they
        may see it but lack `role`."""
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404
        if not self._allowed(request, role, obj):
            raise PermissionDenied
        return obj

    # simple-history's pages find their object without the admin's queryset (another funder's
    # object would answer 403, not 404) and save its "revert" form for anyone who may view it.
    # Both go through the scope here, and only those who may change the object revert it.

    def history_view(self, request, object_id, extra_context=None):
        self.get_scoped_object(request, object_id, role=self.view_role)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        obj = self.get_scoped_object(request, object_id, role=self.view_role)
        if request.method == "POST" and not self.has_change_permission(request, obj):
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Django redirects to the index with a message; another funder's id must look missing.
        raise Http404

    # --- permissions ----------------------------------------------------------------------------

    def _allowed(self, request: HttpRequest, role: str | None, obj: Model | None = None) -> bool:
        user = request.user
        if role is None:
            return False
        if is_operator(user):
            return True
        if self.operators_only or not (user.is_active and user.is_staff):
            return False
        if obj is None:
            return has_role(user, role=role)
        ids = funder_ids(user, role=role)
        return self.model._default_manager.filter(self.scope_filter(ids), pk=obj.pk).exists()

    def has_module_permission(self, request):
        return self._allowed(request, self.view_role)

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, self.view_role, obj) or self.has_change_permission(
            request, obj
        )

    def has_add_permission(self, request):
        return self._allowed(request, self.add_role)

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, self.change_role, obj)

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, self.delete_role, obj)

    def has_manage_permission(self, request):
        """For actions that move money or change aid: `@admin.action(permissions=["manage"])`."""
        return self._allowed(request, Role.MANAGER)

    # --- choices and filters --------------------------------------------------------------------

    def _scope_related(self, model, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        role = self.add_role or self.change_role or self.view_role
        if model is Funder:
            return (
                queryset
                if is_operator(request.user)
                else queryset.filter(pk__in=funder_ids(request.user, role=role))
            )
        related = self.admin_site._registry.get(model)
        if isinstance(related, FunderScopedAdmin):
            return related.scope(queryset, request, role=role)
        return queryset

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        model = db_field.related_model
        queryset = kwargs.get("queryset", model._default_manager.all())
        kwargs["queryset"] = self._scope_related(model, request, queryset)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        model = db_field.related_model
        queryset = kwargs.get("queryset", model._default_manager.all())
        kwargs["queryset"] = self._scope_related(model, request, queryset)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def get_list_filter(self, request):
        # A plain filter on a relation lists every row of the related table, other funders'
        # included; the "related only" filter lists the values present in the scoped rows.
        return [self._scoped_filter(spec) for spec in super().get_list_filter(request)]

    def _scoped_filter(self, spec):
        if not isinstance(spec, str):
            return spec
        try:
            field = get_fields_from_path(self.model, spec)[-1]
        except (FieldDoesNotExist, NotRelationField):
            return spec
        if field.is_relation:
            return (spec, admin.RelatedOnlyFieldListFilter)
        return spec
