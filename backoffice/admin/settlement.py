"""Admin of settlement, for the platform's operators (Django's own permissions on these models;
funders' staff have none): batches and their statements, payouts, and the SEPA files that pay
them. Everything here is shown, never edited: money moves only through the services."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from backoffice.admin.webhooks import ReadOnlyInline, ReadOnlyMixin
from core.errors import DomainError
from merchants.models.settlement import Payout, SepaFile, SettlementBatch, SettlementLine
from merchants.settlement import (
    payout_mark_failed,
    payout_mark_paid,
    payout_retry,
    sepa_file_build,
    stripe_payout_send,
)
from merchants.statements import money_fr, statement_csv, statement_filename, statement_html


class _ObjectViews:
    """Custom pages of one object, for those who may view it."""

    def _viewable(self, request, object_id):
        obj = self.get_object(request, object_id)
        if obj is None:
            raise Http404
        if not self.has_view_permission(request, obj):
            raise PermissionDenied
        return obj


class SettlementLineInline(ReadOnlyInline):
    model = SettlementLine
    fk_name = "batch"
    fields = ["occurred_at", "kind", "decision", "carried_from", "amount"]


@admin.register(SettlementBatch)
class SettlementBatchAdmin(_ObjectViews, ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["reference", "merchant", "period_end", "net_display", "payout_status"]
    list_filter = ["currency", "payout__status"]
    search_fields = ["reference", "merchant__trade_name", "merchant__siret"]
    list_select_related = ["merchant", "payout"]
    date_hierarchy = "period_end"
    fields = ["reference", "merchant", "currency", "period_start", "period_end", "captured",
              "refunded", "carried", "net", "payout_status", "statement"]  # fmt: skip
    readonly_fields = fields
    inlines = [SettlementLineInline]

    @admin.display(description=_("net"), ordering="net")
    def net_display(self, batch):
        return money_fr(batch.net, batch.currency)

    @admin.display(description=_("payout"))
    def payout_status(self, batch):
        payout = getattr(batch, "payout", None)
        return payout.get_status_display() if payout else _("nothing to pay")

    @admin.display(description=_("statement"))
    def statement(self, batch):
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a>',
            reverse("admin:merchants_settlementbatch_statement", args=[batch.pk]),
            _("Read"),
            reverse("admin:merchants_settlementbatch_statement_csv", args=[batch.pk]),
            _("Download (CSV)"),
        )

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<path:object_id>/statement/",
                view(self.statement_page),
                name="merchants_settlementbatch_statement",
            ),
            path(
                "<path:object_id>/statement.csv",
                view(self.statement_download),
                name="merchants_settlementbatch_statement_csv",
            ),
            *super().get_urls(),
        ]

    def statement_page(self, request, object_id):
        return HttpResponse(statement_html(self._viewable(request, object_id)))

    def statement_download(self, request, object_id):
        batch = self._viewable(request, object_id)
        response = HttpResponse(statement_csv(batch), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="{statement_filename(batch, "csv")}"'
        )
        return response


@admin.register(Payout)
class PayoutAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["batch", "merchant", "method", "status", "amount_display", "sent_at",
                    "paid_at"]  # fmt: skip
    list_filter = ["status", "method"]
    search_fields = ["batch__reference", "batch__merchant__trade_name", "stripe_transfer_id"]
    list_select_related = ["batch__merchant"]
    fields = ["batch", "merchant", "method", "status", "amount_display", "destination",
              "sepa_file", "stripe_transfer_id", "failure_reason", "created_at", "sent_at",
              "paid_at"]  # fmt: skip
    readonly_fields = fields
    actions = ["build_sepa_file", "send_stripe", "mark_paid", "mark_returned", "send_again"]

    @admin.display(description=_("merchant"))
    def merchant(self, payout):
        return payout.batch.merchant

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, payout):
        return money_fr(payout.amount, payout.currency)

    def has_send_permission(self, request):
        return request.user.has_perm("merchants.change_payout")

    def _each(self, request, queryset, service, done_message) -> None:
        done = 0
        for payout in queryset:
            try:
                service(payout)
            except DomainError as error:
                self.message_user(request, f"{payout}: {error.message}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(request, done_message(done), messages.SUCCESS)

    @admin.action(description=_("Build a SEPA file for the bank"), permissions=["send"])
    def build_sepa_file(self, request, queryset):
        try:
            sepa_file = sepa_file_build(payouts=list(queryset))
        except DomainError as error:
            self.message_user(request, error.message, messages.ERROR)
            return
        self.message_user(
            request,
            format_html(
                '{} <a href="{}">{}</a>',
                ngettext(
                    "SEPA file with %(count)d transfer built.",
                    "SEPA file with %(count)d transfers built.",
                    sepa_file.count,
                )
                % {"count": sepa_file.count},
                reverse("admin:merchants_sepafile_download", args=[sepa_file.pk]),
                _("Download it for the bank"),
            ),
            messages.SUCCESS,
        )

    @admin.action(description=_("Send the Stripe transfers now"), permissions=["send"])
    def send_stripe(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda payout: stripe_payout_send(payout=payout),
            lambda n: ngettext("%(n)d payout handled.", "%(n)d payouts handled.", n) % {"n": n},
        )

    @admin.action(description=_("The bank confirmed: mark as paid"), permissions=["send"])
    def mark_paid(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda payout: payout_mark_paid(payout=payout),
            lambda n: ngettext("%(n)d payout paid.", "%(n)d payouts paid.", n) % {"n": n},
        )

    @admin.action(description=_("The bank returned it: mark as failed"), permissions=["send"])
    def mark_returned(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda payout: payout_mark_failed(payout=payout, reason=str(_("Returned by the bank"))),
            lambda n: ngettext("%(n)d payout failed.", "%(n)d payouts failed.", n) % {"n": n},
        )

    @admin.action(description=_("Send again (after correcting the details)"), permissions=["send"])
    def send_again(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda payout: payout_retry(payout=payout),
            lambda n: (
                ngettext("%(n)d payout will be sent again.", "%(n)d payouts will be sent again.", n)
                % {"n": n}
            ),
        )


@admin.register(SepaFile)
class SepaFileAdmin(_ObjectViews, ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["message_id", "count", "total_display", "execution_date", "created_at"]
    fields = ["message_id", "count", "total_display", "execution_date", "created_at", "download"]
    readonly_fields = fields

    @admin.display(description=_("total"), ordering="total")
    def total_display(self, sepa_file):
        return money_fr(sepa_file.total, sepa_file.currency)

    @admin.display(description=_("file"))
    def download(self, sepa_file):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:merchants_sepafile_download", args=[sepa_file.pk]),
            _("Download (pain.001 XML)"),
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/download/",
                self.admin_site.admin_view(self.download_file),
                name="merchants_sepafile_download",
            ),
            *super().get_urls(),
        ]

    def download_file(self, request, object_id):
        sepa_file = self._viewable(request, object_id)
        response = HttpResponse(sepa_file.content, content_type="application/xml")
        response["Content-Disposition"] = f'attachment; filename="{sepa_file.message_id}.xml"'
        return response
