"""Writes of the till: a shop registering with its owner, cashiers invited and joining, the
owners' second factor, sign-in tries counted. Everything about money goes through the merchants
domain (merchants.payments, merchants.services, merchants.webhooks), as the merchant API does."""

import secrets
import uuid
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model, password_validation
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_totp.models import TOTPDevice

from core.errors import InvalidState
from core.validators import email_canonical
from merchants.models import Merchant
from merchants.services import merchant_create
from shop.models import Role, ShopInvitation, ShopMember, TillSettings


class EmailTaken(InvalidState):
    code = "email_taken"
    default_message = _("This e-mail address already has an account on a till.")


class InvitationInvalid(InvalidState):
    code = "invitation_invalid"
    default_message = _(
        "This invitation link does not work: it was already used or is too old. Ask the shop's "
        "owner for a new one."
    )


def _user_create(*, email: str, password: str):
    """A user for a shop member: never staff (the admin refuses it), a username of its own so
    that it can never clash with a funder's staff."""
    user = get_user_model()(username=f"shop-{uuid.uuid4().hex}", email=email, is_staff=False)
    password_validation.validate_password(password, user)
    user.set_password(password)
    user.save()
    return user


def _free_email(email: str) -> str:
    email = email_canonical(email)
    if ShopMember.objects.filter(email=email).exists():
        raise EmailTaken(field="email")
    return email


def shop_register(*, owner_email: str, password: str, card_acceptors=(), **fields) -> ShopMember:
    """A shop registers: its merchant record (pending an operator's approval, through the same
    service as the merchant API's applications) and its owner's account."""
    with transaction.atomic():
        email = _free_email(owner_email)
        merchant = merchant_create(card_acceptors=card_acceptors, **fields)
        user = _user_create(email=email, password=password)
        return ShopMember.objects.create(user=user, merchant=merchant, email=email, role=Role.OWNER)


def invitation_create(*, member: ShopMember, email: str, site_url: str) -> ShopInvitation:
    """An owner invites a cashier: a one-time link by e-mail, no password sent."""
    if not member.is_owner:
        raise InvalidState(message=_("Only the shop's owner can invite someone."))
    email = _free_email(email)
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        invitation = ShopInvitation.objects.create(
            merchant=member.merchant,
            email=email,
            role=Role.CASHIER,
            digest=ShopInvitation.digest_of(token),
            invited_by=member,
            expires_at=timezone.now() + timedelta(days=settings.SHOP_INVITATION_DAYS),
        )
        link = site_url.rstrip("/") + reverse("shop:join-team", args=[token])
        language = translation.get_language()
        transaction.on_commit(lambda: _send_invitation(invitation, link, language))
    return invitation


def _send_invitation(invitation: ShopInvitation, link: str, language: str) -> None:
    with translation.override(language):
        context = {
            "shop": invitation.merchant.trade_name,
            "link": link,
            "days": settings.SHOP_INVITATION_DAYS,
        }
        send_mail(
            subject=str(_("Your access to the till of %(shop)s") % context),
            message=render_to_string("shop/email/invitation.txt", context),
            from_email=None,
            recipient_list=[invitation.email],
        )


def invitation_find(token: str) -> ShopInvitation:
    invitation = (
        ShopInvitation.objects.select_related("merchant")
        .filter(digest=ShopInvitation.digest_of(token), used_at__isnull=True)
        .filter(expires_at__gt=timezone.now())
        .first()
    )
    if invitation is None:
        raise InvitationInvalid()
    return invitation


def invitation_accept(*, token: str, password: str) -> ShopMember:
    """Whoever holds the link chooses a password and becomes a member; the link dies."""
    with transaction.atomic():
        invitation = invitation_find(token)
        claimed = ShopInvitation.objects.filter(pk=invitation.pk, used_at__isnull=True).update(
            used_at=timezone.now()
        )
        if not claimed:
            raise InvitationInvalid()
        email = _free_email(invitation.email)
        user = _user_create(email=email, password=password)
        return ShopMember.objects.create(
            user=user, merchant=invitation.merchant, email=email, role=invitation.role
        )


def member_remove(*, owner: ShopMember, member: ShopMember) -> None:
    """An owner removes a cashier: their account stops working at once."""
    if not owner.is_owner or member.merchant_id != owner.merchant_id or member.is_owner:
        raise InvalidState(message=_("Only a cashier of your shop can be removed."))
    user = member.user
    user.is_active = False
    user.save(update_fields=["is_active"])
    member.delete()


def owners_tell_approved(sender, *, merchant: Merchant, **kwargs) -> None:
    """Tell a shop's owners that it may take aid payments (connected to merchant_approved)."""
    emails = list(
        ShopMember.objects.filter(merchant=merchant, role=Role.OWNER).values_list(
            "email", flat=True
        )
    )
    if not emails:
        return

    def send() -> None:
        # The owners registered in French or English; the message is in French first, as
        # the shops are French.
        with translation.override(settings.LANGUAGE_CODE):
            context = {"shop": merchant.trade_name}
            send_mail(
                subject=str(_("%(shop)s can now take aid payments") % context),
                message=render_to_string("shop/email/approved.txt", context),
                from_email=None,
                recipient_list=emails,
            )

    transaction.on_commit(send)


# --- the owners' second factor (django-otp, TOTP) ---------------------------------------------


def totp_device(member: ShopMember) -> TOTPDevice:
    """The owner's authenticator, created unconfirmed the first time (shown as a QR code until
    the owner types a first code from it)."""
    device = TOTPDevice.objects.filter(user=member.user).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=member.user, name="till", confirmed=False)
    return device


def totp_confirm(*, device: TOTPDevice, token: str) -> bool:
    if not device.verify_token(token.replace(" ", "")):
        return False
    if not device.confirmed:
        device.confirmed = True
        device.save(update_fields=["confirmed"])
    return True


# --- sign-in tries ----------------------------------------------------------------------------

_WINDOW = 900  # seconds


def sign_in_tries_left(*, email: str, ip: str) -> bool:
    """Count one sign-in try for this address and this client; False once either has tried
    too often in the last quarter of an hour (a password guessed slowly, or many accounts
    tried from one place)."""
    allowed = True
    for key, cap in (
        (f"shop-sign-in:email:{email.strip().lower()}", settings.SHOP_SIGN_IN_TRIES_PER_EMAIL),
        (f"shop-sign-in:ip:{ip}", settings.SHOP_SIGN_IN_TRIES_PER_IP),
    ):
        cache.add(key, 0, _WINDOW)
        try:
            tries = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, _WINDOW)
            tries = 1
        allowed = allowed and tries <= cap
    return allowed


def shop_member_for(*, email: str, password: str) -> ShopMember | None:
    """The member with this address and password, if active; None otherwise (whichever part
    was wrong: a sign-in page does not tell which addresses have an account)."""
    try:
        email = email_canonical(email)
    except ValidationError:
        return None
    member = ShopMember.objects.select_related("user", "merchant").filter(email=email).first()
    if member is None or not member.user.is_active or not member.user.check_password(password):
        # The same work when there is no such member, so timing tells nothing either.
        get_user_model()().set_password(password)
        return None
    return member


def till_settings_update(*, member: ShopMember, capture_later: bool) -> TillSettings:
    if not member.is_owner:
        raise InvalidState(message=_("Only the shop's owner can change this."))
    settings_row, _created = TillSettings.objects.update_or_create(
        merchant=member.merchant, defaults={"capture_later": capture_later}
    )
    return settings_row


def capture_later(merchant: Merchant) -> bool:
    return TillSettings.objects.filter(merchant=merchant, capture_later=True).exists()
