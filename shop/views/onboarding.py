"""A shop registers from its SIRET: checked, looked up in the company register (when one is
configured), the details confirmed or typed, its bank details and owner account; then it waits
for an operator's approval (admin), and is told by e-mail."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _

from core.errors import DomainError
from engine.categories import GROUP_LABELS
from merchants.naf import naf_suggestion
from merchants.sirene import sirene_client
from shop.forms import JoinTeamForm, ShopDetailsForm, SiretForm
from shop.services import invitation_accept, invitation_find, shop_register

_LOOKUP = "shop_register_lookup"


def register(request):
    """Step 1: the SIRET."""
    form = SiretForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        siret = form.cleaned_data["siret"]
        client = sirene_client()
        found = client.establishment(siret) if client else None
        request.session[_LOOKUP] = {
            "siret": siret,
            "register": client is not None,
            "found": found.__dict__ if found else None,
        }
        return redirect("shop:register-details")
    return render(request, "shop/register.html", {"form": form}, status=400 if form.errors else 200)


def register_details(request):
    """Step 2: what the register said (to confirm or correct), or what the shop types."""
    lookup = request.session.get(_LOOKUP)
    if not lookup:
        return redirect("shop:register")
    found = lookup["found"] or {}
    suggestion = naf_suggestion(found["naf"]) if found.get("naf") else None
    initial = {"siret": lookup["siret"], **{k: v for k, v in found.items() if k != "naf"}}
    if suggestion:
        initial["mcc"] = suggestion.mcc
    form = ShopDetailsForm(request.POST or None, initial=initial)
    if request.method == "POST":
        # The SIRET is the one checked at step 1, whatever the page sends back.
        form.data = form.data.copy()
        form.data["siret"] = lookup["siret"]
        if form.is_valid():
            try:
                shop_register(
                    owner_email=form.cleaned_data["owner_email"],
                    password=form.cleaned_data["password"],
                    card_acceptors=form.card_acceptors(),
                    **form.merchant_fields(),
                )
            except ValidationError as error:
                # The form checked the shop's fields and the address: what is left is the
                # password, against the password validators.
                form.add_error("password", error)
            except DomainError as error:
                field = {"email": "owner_email", "card_acceptors": "network_id"}.get(
                    error.field, error.field
                )
                form.add_error(field if field in form.fields else None, str(error.message))
            else:
                del request.session[_LOOKUP]
                return redirect("shop:registered")
    context = {
        "form": form,
        "lookup": lookup,
        "suggestion": suggestion,
        "groups": [GROUP_LABELS[name] for name in suggestion.groups] if suggestion else [],
    }
    return render(
        request, "shop/register_details.html", context, status=400 if form.errors else 200
    )


def registered(request):
    return render(request, "shop/registered.html")


def join_team(request, token: str):
    """A cashier opens their invitation link and chooses a password."""
    try:
        invitation = invitation_find(token)
    except DomainError as error:
        return render(
            request, "shop/invitation_invalid.html", {"message": error.message}, status=404
        )
    form = JoinTeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            invitation_accept(token=token, password=form.cleaned_data["password"])
        except ValidationError as error:
            form.add_error("password", error)
        except DomainError as error:
            form.add_error(None, str(error.message))
        else:
            messages.success(request, _("Your account is ready. Sign in with your e-mail address."))
            return redirect("shop:sign-in")
    return render(
        request,
        "shop/join_team.html",
        {"form": form, "invitation": invitation},
        status=400 if form.errors else 200,
    )
