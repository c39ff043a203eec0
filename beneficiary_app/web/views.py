"""The page of the beneficiaries' app and its service worker.

The page is a shell: app.js draws every screen from the app API. Its texts are rendered here,
in the request's language (LocaleMiddleware: the language cookie the app sets, else the phone's
Accept-Language, else French), so they live in the django catalogue with the rest."""

import hashlib
import json
import mimetypes

from django.conf import settings
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe
from django.views.decorators.vary import vary_on_cookie

from core.static_assets import static_digest
from funders.models import Funder
from wallet.models.notifications import Notification

# What the service worker keeps for an offline start, besides the page itself.
ASSETS = {
    "css": "mobile/app.css",
    "js": "mobile/app.js",
    "manifest": "mobile/manifest.json",
    "icon": "mobile/icon.svg",
    "icon_192": "mobile/icon-192.png",
    "icon_512": "mobile/icon-512.png",
}

# The texts app.js shows, by key. %(name)s marks what app.js fills in.
STRINGS = {
    "app_name": _("My aid"),
    "loading": _("Loading…"),
    "error": _("Something went wrong. Please try again in a moment."),
    "offline": _("No internet connection. Check that your phone is connected, then try again."),
    "too_many_tries": _("Too many tries. Please wait %(minutes)s min, then try again."),
    "signed_out": _("You are signed out. Please sign in again with a new code."),
    "prefix_error": _("Problem:"),
    "prefix_success": _("Done:"),
    "prefix_warning": _("Warning:"),
    "try_again": _("Try again"),
    "problem_title": _("This page could not be shown"),
    "not_found_title": _("Page not found"),
    "holder_viewing": _("%(name)s's wallet"),
    "view_only": _(
        "You are viewing %(name)s's wallet because %(name)s allowed you to. You cannot change "
        "anything."
    ),
    # sign-in
    "sign_in_title": _("Sign in"),
    "sign_in_intro": _(
        "Type the phone number or the email address that the organisation giving you aid has "
        "recorded. We will send you a code."
    ),
    "contact_label": _("Phone number or email address"),
    "contact_hint": _("For example: 06 12 34 56 78"),
    "contact_missing": _("Type your phone number or your email address."),
    "send_code": _("Send me a code"),
    "code_sent_if_known": _(
        "If %(contact)s is the one the organisation giving you aid has recorded, a code has "
        "just been sent to it. It works for %(minutes)s minutes."
    ),
    "code_label": _("The code (6 digits)"),
    "code_hint": _("You received it by text message or by email."),
    "code_format": _("The code has 6 digits. Type the 6 digits you received."),
    "sign_in": _("Sign in"),
    "send_new_code": _("Send me a new code"),
    "use_other_contact": _("Use another phone number or email address"),
    "choose_wallet_title": _("Whose wallet?"),
    "choose_wallet_intro": _("You can see several wallets. Choose the one to open."),
    "my_wallet": _("My wallet (%(name)s)"),
    "wallet_of": _("%(name)s's wallet (view only)"),
    # my aid
    "home_title": _("My aid"),
    "home_intro": _("Hello %(name)s. Here is the money you can spend."),
    "home_intro_aidant": _("Here is the aid of %(name)s."),
    "no_aid": _("You have no aid at the moment."),
    "total_available": _("You can spend in all"),
    "pay_button": _("Pay"),
    "home_card_frozen": _("Your card ending in %(last4)s is frozen: payments with it are refused."),
    "home_card_frozen_no_digits": _("Your card is frozen: payments with it are refused."),
    "home_card_frozen_link": _("Unfreeze my card"),
    "call_funder": _("Questions? Call %(phone)s"),
    "valid_phrase": _("Valid %(until)s."),
    "available": _("Available:"),
    "held": _("Reserved for payments in progress: %(amount)s"),
    "rules_title": _("How to use it"),
    "where_link": _("Where can I use it?"),
    # where to spend
    "where_intro": _("Shops that accept this aid, nearest first."),
    "use_position": _("Use my position"),
    "locating": _("Looking for your position…"),
    "no_position": _("We could not find your position. Type your postcode instead."),
    "postcode_label": _("Postcode"),
    "postcode_hint": _("5 digits, for example 38000"),
    "postcode_format": _("Type the 5 digits of a postcode, for example 38000."),
    "search": _("Search"),
    "shops_all": _("Shops that accept this aid"),
    "shops_near_you": _("Shops near you"),
    "shops_near_postcode": _("Shops near %(postcode)s"),
    "shops_found": _("Shops found: %(count)s."),
    "no_shop": _("No shop found."),
    "distance": _("%(distance)s km away"),
    "map_label": _(
        "Map of where the distances are measured from and of the %(count)s nearest shops, "
        "numbered as in the list."
    ),
    "map_ring": _("%(distance)s km"),
    "map_legend": _(
        "The red dot is where the distances are measured from; the numbers are the shops of "
        "the list. The map is drawn on this phone: no map service learns where you are."
    ),
    "map_legend_no_origin": _("The numbers are the shops of the list."),
    "more_shops": _("Show more shops"),
    "back_home": _("Back to my aid"),
    # history
    "history_title": _("History"),
    "no_history": _("Nothing yet."),
    "event_aid_granted": _("Aid received"),
    "event_aid_ended": _("Aid ended"),
    "event_refund": _("Refund"),
    "payment_approved": _("Payment"),
    "payment_partial": _("Payment partly accepted"),
    "payment_declined": _("Payment refused"),
    "why_refused_link": _("Why? What can I do?"),
    "details_link": _("See the details"),
    "more_events": _("Show older events"),
    "payment_line": _("%(amount)s at %(merchant)s"),
    "why_refused": _("Why it was refused, and what you can do"),
    "why_partial": _("Why only part was accepted"),
    "paid_with": _("Paid with your aid"),
    "paid_part": _("%(aid)s: %(amount)s"),
    "amount_held": _("Reserved, not yet taken by the shop: %(amount)s"),
    "amount_captured": _("Taken by the shop: %(amount)s"),
    "amount_refunded": _("Refunded: %(amount)s"),
    "checks_title": _("Your aid, one by one"),
    "check_line": _("%(aid)s: %(answer)s"),
    "check_accepted": _("this aid could pay."),
    "back_history": _("Back to the history"),
    "questions_title": _("Questions about your aid?"),
    # card
    "card_title": _("My card"),
    "no_card": _("You have no card. You can pay with a payment code."),
    "pay_instead": _("Pay with a code"),
    "card_ending": _("Card ending in %(last4)s"),
    "card_no_digits": _("Card"),
    "card_physical": _("Plastic card"),
    "card_virtual": _("Card on the phone"),
    "card_status": _("Status:"),
    "card_active": _("working. You can pay with it."),
    "card_frozen": _("frozen. Payments with this card are refused until you unfreeze it."),
    "card_inactive": _("not active yet."),
    "card_lost": _("blocked for good (lost or stolen)."),
    "freeze_hint": _(
        "Cannot find your card for now? Freeze it: nobody can pay with it. You can unfreeze it "
        "in one tap."
    ),
    "freeze": _("Freeze my card"),
    "unfreeze": _("Unfreeze my card"),
    "report_lost": _("Report my card lost or stolen"),
    "lost_question": _("Report this card lost or stolen?"),
    "lost_warning": _(
        "The card will be blocked for good. This cannot be undone: ask the organisation giving "
        "you aid for a new card. Your money stays in your wallet."
    ),
    "lost_confirm": _("Yes, block my card for good"),
    "lost_cancel": _("No, go back"),
    "done_frozen": _("Your card is frozen. Payments with it are refused."),
    "done_unfrozen": _("Your card works again."),
    "done_lost": _("Your card is blocked for good."),
    # pay
    "pay_title": _("Pay with a code"),
    "pay_intro": _(
        "Show a code to the shop: the shop types the numbers or scans the square code. A code "
        "works once, for a few minutes."
    ),
    "pay_read_only": _("Only the holder of this wallet can pay."),
    "show_code": _("Show a payment code"),
    "code_intro": _("Your payment code:"),
    "qr_alt": _("Square code (QR code) of the payment code %(code)s"),
    "time_left": _("Time left: %(minutes)s min %(seconds)s s"),
    "one_minute_left": _("Less than one minute left for this code."),
    "code_expired": _("This code no longer works. Ask for a new code."),
    "new_code": _("New code"),
    # settings
    "settings_title": _("Settings"),
    "language_title": _("Language"),
    "language_intro": _("The language of the app and of the messages we send you."),
    "language_intro_view": _("The language of the app."),
    "aidants_title": _("People who can see my wallet"),
    "aidants_intro": _(
        "A social worker or someone close to you can see your aid and your history, to help "
        "you. They cannot pay or change anything."
    ),
    "no_aidant": _("Nobody else can see your wallet."),
    "aidant_unnamed": _("No name given"),
    "aidant_remove": _("Remove %(name)s"),
    "aidant_removed": _("%(name)s can no longer see your wallet."),
    "aidant_add_title": _("Allow someone"),
    "aidant_contact_label": _("Their phone number or email address"),
    "aidant_contact_hint": _("They will sign in with a code sent there."),
    "aidant_name_label": _("Their name (to recognise them)"),
    "aidant_add": _("Allow this person"),
    "aidant_added": _("%(name)s can now see your wallet."),
    "messages_title": _("Messages we send you"),
    "messages_intro": _("Choose how we tell you about your aid."),
    "messages_save": _("Save my choices"),
    "messages_saved": _("Your choices are saved."),
    "messages_always": _("Always sent: %(kinds)s."),
    "push_title": _("Notifications on this phone"),
    "push_state_on": _("This phone shows the app's notifications."),
    "push_state_off": _("This phone does not show the app's notifications."),
    "push_on": _("Turn on notifications on this phone"),
    "push_off": _("Turn off notifications on this phone"),
    "push_is_on": _("Notifications are on for this phone."),
    "push_is_off": _("Notifications are off for this phone."),
    "push_denied": _(
        "The phone blocks notifications for this app. You can allow them in the phone's settings."
    ),
    "wallets_title": _("Wallets"),
    "sign_out_title": _("Sign out"),
    "sign_out": _("Sign out"),
    "sign_out_everywhere_hint": _(
        "Lost your phone, or signed in on someone else's? Sign out on every phone and computer."
    ),
    "sign_out_everywhere": _("Sign out on all my devices"),
    "signed_out_done": _("You are signed out."),
    "signed_out_everywhere_done": _("You are signed out on all your devices."),
}


def _api_root() -> str:
    # Every app API path hangs from the root of /me.
    return reverse("app_api:me").removesuffix("me")


def _assets_version() -> str:
    return static_digest(ASSETS.values())


def _asset_urls(version: str) -> dict[str, str]:
    return {key: f"{static(name)}?v={version}" for key, name in ASSETS.items()}


@vary_on_cookie  # the language cookie
def shell(request):
    shell_url = reverse("mobile:shell")
    config = {
        "api": _api_root(),
        "serviceWorker": reverse("mobile:service-worker"),
        "scope": shell_url,
        "languageCookie": settings.LANGUAGE_COOKIE_NAME,
        "languages": settings.LANGUAGES,
        "timeZone": settings.TIME_ZONE,
        "channels": dict(Notification.Channel.choices),
        "codeMinutes": settings.APP_SIGN_IN_CODE_TTL_SECONDS // 60,
    }
    return render(
        request,
        "mobile/index.html",
        {"config": config, "strings": STRINGS, "assets": _asset_urls(_assets_version())},
    )


@vary_on_cookie  # the language cookie: the title of the notifications it shows
def service_worker(request):
    shell_url = reverse("mobile:shell")
    version = _assets_version()
    assets = _asset_urls(version)
    response = render(
        request,
        "mobile/sw.js",
        {
            "cache_name": json.dumps(f"aidwallet-app-{version}"),
            "shell_url": json.dumps(shell_url),
            "asset_urls": json.dumps(list(assets.values())),
            "app_name": json.dumps(str(STRINGS["app_name"])),
            "icon_url": json.dumps(assets["icon_192"]),
        },
        content_type="text/javascript; charset=utf-8",
    )
    response["Service-Worker-Allowed"] = shell_url
    # The browser checks for a new worker at each visit; no cache may keep an old one.
    response["Cache-Control"] = "no-cache"
    return response


@vary_on_cookie  # the language cookie
def privacy_notice(request):
    """The information notice (GDPR articles 13 and 14): what is collected about the person, by
    whom, why, for how long, and their rights. A plain page, readable without JavaScript and
    without signing in: the first message each contact receives links to it."""
    days = settings.RETENTION_DAYS
    return render(
        request,
        "mobile/privacy.html",
        {
            "assets": _asset_urls(_assets_version()),
            "dpo": settings.DPO_CONTACT,
            "operator": settings.OPERATOR_NAME,
            "outbox_months": days["outbox_texts"] // 30,
            "stale_years": days["stale_people"] // 365,
            "profile_years": days["stale_profiles"] // 365,
        },
    )


@require_safe
def funder_logo(request, funder_id: int):
    """A funder's logo, public as the funder's name is: served here, from whatever storage
    keeps uploads, so that no web server rule is needed. Its URL carries the file's name (see
    funder_logo_url), so a new logo is a new URL and the old one may be kept for long."""
    funder = get_object_or_404(Funder, pk=funder_id)
    if not funder.logo:
        raise Http404
    content_type = mimetypes.guess_type(funder.logo.name)[0]
    if content_type not in ("image/png", "image/jpeg", "image/webp"):
        raise Http404
    response = FileResponse(funder.logo.open("rb"), content_type=content_type)
    response["Cache-Control"] = "public, max-age=86400"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def funder_logo_url(funder: Funder) -> str | None:
    if not funder.logo:
        return None
    version = hashlib.sha256(funder.logo.name.encode()).hexdigest()[:8]
    return f"{reverse('mobile:funder-logo', args=[funder.pk])}?v={version}"
