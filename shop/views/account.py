"""The shop's account, for its owner: its details and bank account, how the till takes
payments, settlements and statements, the team, and what integrators need (API keys, webhook
endpoints, test or live mode)."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from core.errors import DomainError
from core.money import format_money
from merchants.models import ApiKey
from merchants.models.webhooks import WebhookEndpoint
from merchants.services import api_key_create, api_key_revoke
from merchants.statements import statement_csv, statement_filename, statement_html
from merchants.webhooks import webhook_endpoint_create, webhook_endpoint_disable
from shop.forms import ApiKeyForm, InviteForm, TillSettingsForm, WebhookForm
from shop.models import ShopMember
from shop.services import capture_later, invitation_create, member_remove, till_settings_update
from shop.views.access import member_required


def _masked_iban(iban: str) -> str:
    # Enough to recognise the account, not enough to copy it from a screen over a shoulder.
    return f"{iban[:4]} •••• {iban[-4:]}" if iban else ""


@member_required(owner=True)
def details(request):
    merchant = request.member.merchant
    form = TillSettingsForm(
        request.POST or None, initial={"capture_later": capture_later(merchant)}
    )
    if request.method == "POST" and form.is_valid():
        till_settings_update(
            member=request.member, capture_later=form.cleaned_data["capture_later"]
        )
        messages.success(request, _("Saved."))
        return redirect("shop:details")
    return render(
        request,
        "shop/details.html",
        {
            "merchant": merchant,
            "iban": _masked_iban(merchant.iban),
            "card_acceptors": merchant.card_acceptors.all(),
            "form": form,
        },
    )


@member_required(owner=True)
def settlements(request):
    batches = request.member.merchant.settlement_batches.select_related("payout").order_by(
        "-period_end"
    )
    rows = [
        {
            "batch": b,
            "net": format_money(b.net, b.currency),
            "payout": getattr(b, "payout", None),
        }
        for b in batches[:100]
    ]
    return render(request, "shop/settlements.html", {"rows": rows})


def _batch(request, reference: str):
    return get_object_or_404(request.member.merchant.settlement_batches, reference=reference)


@member_required(owner=True)
def statement(request, reference: str):
    return HttpResponse(statement_html(_batch(request, reference)))


@member_required(owner=True)
def statement_download(request, reference: str):
    batch = _batch(request, reference)
    response = HttpResponse(statement_csv(batch), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{statement_filename(batch, "csv")}"'
    return response


@member_required(owner=True)
def team(request):
    merchant = request.member.merchant
    form = InviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            invitation_create(
                member=request.member,
                email=form.cleaned_data["email"],
                site_url=request.build_absolute_uri("/"),
            )
        except DomainError as error:
            form.add_error("email", str(error.message))
        except ValidationError as error:  # an address that is not one (email_canonical)
            form.add_error("email", error)
        else:
            messages.success(request, _("Invitation sent to %(email)s.") % form.cleaned_data)
            return redirect("shop:team")
    context = {
        "form": form,
        "members": merchant.shop_members.order_by("role", "email"),
        "invitations": merchant.invitations.filter(used_at__isnull=True)[:50],
    }
    return render(request, "shop/team.html", context, status=400 if form.errors else 200)


@require_POST
@member_required(owner=True)
def team_remove(request, member_id: int):
    member = get_object_or_404(ShopMember, pk=member_id, merchant=request.member.merchant)
    try:
        member_remove(owner=request.member, member=member)
    except DomainError as error:
        messages.error(request, str(error.message))
    else:
        messages.success(
            request, _("%(email)s can no longer use the till.") % {"email": member.email}
        )
    return redirect("shop:team")


def _mode(request) -> str:
    mode = request.GET.get("mode", ApiKey.Mode.LIVE)
    return mode if mode in ApiKey.Mode.values else ApiKey.Mode.LIVE


@member_required(owner=True)
def integrations(request):
    """API keys of the chosen mode (test or live: the switch), and the webhook endpoints."""
    merchant = request.member.merchant
    mode = _mode(request)
    context = {
        "mode": mode,
        "modes": ApiKey.Mode.choices,
        "keys": merchant.api_keys.filter(mode=mode).order_by("-created_at"),
        "endpoints": WebhookEndpoint.objects.filter(merchant=merchant).order_by("-pk"),
        "key_form": ApiKeyForm(initial={"mode": mode}),
        "webhook_form": WebhookForm(),
    }
    return render(request, "shop/integrations.html", context)


@require_POST
@member_required(owner=True)
def api_key_new(request):
    form = ApiKeyForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give the key a name."))
        return redirect("shop:integrations")
    try:
        key, secret = api_key_create(merchant=request.member.merchant, **form.cleaned_data)
    except DomainError as error:
        messages.error(request, str(error.message))
        return redirect("shop:integrations")
    # Shown in this answer only, never stored in clear nor put in the session.
    response = render(
        request,
        "shop/secret_once.html",
        {"what": key, "secret": secret, "back": f"?mode={key.mode}"},
    )
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@member_required(owner=True)
def api_key_revoke_view(request, key_id: int):
    key = get_object_or_404(request.member.merchant.api_keys, pk=key_id)
    api_key_revoke(key=key)
    messages.success(request, _("Key %(prefix)s… revoked.") % {"prefix": key.prefix})
    return redirect(f"{reverse('shop:integrations')}?mode={key.mode}")


@require_POST
@member_required(owner=True)
def webhook_new(request):
    form = WebhookForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("url", []):
            messages.error(request, error)
        return redirect("shop:integrations")
    try:
        endpoint = webhook_endpoint_create(
            merchant=request.member.merchant,
            url=form.cleaned_data["url"],
            # None: every event, including the kinds added later.
            enabled_events=None,
        )
    except ValidationError as error:
        messages.error(request, "; ".join(getattr(error, "messages", [str(error)])))
        return redirect("shop:integrations")
    response = render(
        request,
        "shop/secret_once.html",
        {"what": endpoint.url, "secret": endpoint.secret, "back": ""},
    )
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@member_required(owner=True)
def webhook_disable(request, endpoint_id: int):
    endpoint = get_object_or_404(WebhookEndpoint, pk=endpoint_id, merchant=request.member.merchant)
    webhook_endpoint_disable(endpoint=endpoint)
    messages.success(request, _("Endpoint disabled."))
    return redirect("shop:integrations")
