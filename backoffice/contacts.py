"""Changes of a beneficiary's email and mobile phone.

A sign-in code goes to the contact the funder recorded, so whoever can change that contact can
sign in as the person and spend their aid, every funder's. A change therefore takes effect only
once confirmed by a manager (or stronger) of a funder helping the person, or by the platform
operator: theirs is confirmed at once, an agent's waits for one of them
(ContactChangeRequest). Registering a new person with their contacts needs no confirmation: no
wallet holds money yet.

When a change takes effect, every app token of the wallet is revoked (aidants' too: they sign
in again if still allowed), pending sign-in codes of the old and the new contact stop working,
and the person is told on their contacts as they were before the change.

Who may decide is checked here, not only in the admin: it is the line this module holds."""

from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from beneficiary_app.services import contact_parse
from core.errors import DomainError, InvalidState
from core.validators import email_canonical
from funders.models import Enrolment
from funders.tenancy import Role, funder_ids, is_operator
from notifications.services import contact_change_notify
from wallet.models import Beneficiary, ContactChangeRequest
from wallet.models.access import AppToken, SignInCode

Field = ContactChangeRequest.Field
Status = ContactChangeRequest.Status

# An agent's request left undecided this long is not confirmed any more: the person's situation
# may have changed since; the agent asks again.
CONTACT_CHANGE_LIFETIME = timedelta(days=14)


class ContactInvalid(DomainError):
    code = "invalid_contact"
    default_message = _("Enter a valid email address or mobile phone number.")


class ContactChangeNotAllowed(DomainError):
    code = "contact_change_not_allowed"
    status = 403
    default_message = _(
        "Only a manager of a funder helping this person can confirm or refuse a change of "
        "their contact details."
    )


class ContactChangeClosed(InvalidState):
    """The request was already decided, or can no longer be: each end has its own code."""

    status = 409
    MESSAGES = {
        Status.CONFIRMED: _("This change of contact details was already confirmed."),
        Status.REFUSED: _("This change of contact details was refused."),
        Status.EXPIRED: _("This change of contact details expired: ask for it again."),
        Status.WITHDRAWN: _(
            "This change of contact details was withdrawn: a newer change replaced it, or the "
            "person's data was erased."
        ),
    }

    def __init__(self, status: str):
        self.code = f"contact_change_{status}"
        super().__init__(self.MESSAGES[status], field=None)


class BeneficiaryErased(InvalidState):
    code = "beneficiary_erased"
    default_message = _("This person's data was erased: their contact details cannot be set.")


# --- selectors ------------------------------------------------------------------------------


def contact_change_may_decide(*, user: AbstractBaseUser, beneficiary: Beneficiary) -> bool:
    """Whether `user` may change the person's contacts, or confirm or refuse an agent's change:
    the platform operator, or a manager (or stronger) of a funder helping the person."""
    if is_operator(user):
        return True
    helping = Enrolment.objects.filter(beneficiary=beneficiary).values_list("funder_id", flat=True)
    return not funder_ids(user, role=Role.MANAGER).isdisjoint(helping)


def _stored(field: str, value: str) -> str:
    """`value` as the person's row stores it (a phone in E.164); ContactInvalid otherwise."""
    try:
        cleaned = Beneficiary._meta.get_field(field).clean(str(value or "").strip(), None)
    except ValidationError as exc:
        raise ContactInvalid(field=field) from exc
    if field == Field.PHONE:
        return cleaned.as_e164 if cleaned else ""
    if not cleaned:
        return ""
    # In the one form sign-in compares with "=", refused here rather than when a manager
    # confirms (Beneficiary.save() would refuse it then).
    try:
        return email_canonical(cleaned)
    except ValidationError as exc:
        raise ContactInvalid(field=field) from exc


def _current(person: Beneficiary, field: str) -> str:
    return _stored(field, getattr(person, field)) if getattr(person, field) else ""


# --- services -------------------------------------------------------------------------------


def beneficiary_contact_change_request(
    *, beneficiary: Beneficiary, field: str, value: str, by: AbstractBaseUser
) -> ContactChangeRequest | None:
    """Ask to set the person's `field` ("email" or "phone") to `value` ("" removes it).
    Confirmed at once when `by` may decide (contact_change_may_decide); otherwise pending, for
    CONTACT_CHANGE_LIFETIME, replacing a pending request for the same field. None when `value`
    is the contact already recorded; asking again for the value already pending returns that
    request."""
    if field not in Field.values:
        raise ContactInvalid(field=field)
    value = _stored(field, value)
    with transaction.atomic():
        # The person's row first, as confirmation takes it: one change at a time per person.
        person = Beneficiary.objects.select_for_update().get(pk=beneficiary.pk)
        if person.erased_at is not None:
            raise BeneficiaryErased(field=field)
        current = _current(person, field)
        pending = ContactChangeRequest.objects.filter(
            beneficiary=person, field=field, status=Status.PENDING
        )
        may_decide = contact_change_may_decide(user=by, beneficiary=person)
        now = timezone.now()
        pending.filter(expires_at__lte=now).update(status=Status.EXPIRED)
        waiting = pending.first()
        if waiting is not None and (waiting.old_value, waiting.new_value) == (current, value):
            if may_decide:
                _apply(waiting, person, by=by, now=now)
            return waiting
        pending.update(status=Status.WITHDRAWN)
        if value == current:
            return None
        change = ContactChangeRequest.objects.create(
            beneficiary=person,
            field=field,
            old_value=current,
            new_value=value,
            requested_by=by,
            requested_at=now,
            expires_at=now + CONTACT_CHANGE_LIFETIME,
        )
        if may_decide:
            _apply(change, person, by=by, now=now)
    return change


def beneficiary_contact_change_confirm(
    *, change: ContactChangeRequest, by: AbstractBaseUser
) -> ContactChangeRequest:
    """Confirm a pending change: the person's contact is set, the wallet's sessions end and
    the person is told on their old contacts. Confirming a confirmed change changes nothing.
    ContactChangeNotAllowed unless `by` may decide; ContactChangeClosed once refused, withdrawn
    or expired."""
    if not contact_change_may_decide(user=by, beneficiary=change.beneficiary):
        raise ContactChangeNotAllowed()
    expired = False
    with transaction.atomic():
        person = Beneficiary.objects.select_for_update().get(pk=change.beneficiary_id)
        locked = ContactChangeRequest.objects.select_for_update().get(pk=change.pk)
        now = timezone.now()
        if locked.status == Status.CONFIRMED:
            return locked
        if locked.status != Status.PENDING:
            raise ContactChangeClosed(locked.status)
        if locked.expires_at <= now:
            locked.status = Status.EXPIRED
            locked.save(update_fields=["status"])
            expired = True
        else:
            _apply(locked, person, by=by, now=now)
    # Raised after the commit, so that the request stays marked expired.
    if expired:
        raise ContactChangeClosed(Status.EXPIRED)
    return locked


def beneficiary_contact_change_refuse(
    *, change: ContactChangeRequest, by: AbstractBaseUser
) -> ContactChangeRequest:
    """Refuse a pending change: the person's contacts stay as they are. Refusing a refused
    change changes nothing. ContactChangeNotAllowed unless `by` may decide;
    ContactChangeClosed once confirmed, withdrawn or expired."""
    if not contact_change_may_decide(user=by, beneficiary=change.beneficiary):
        raise ContactChangeNotAllowed()
    with transaction.atomic():
        Beneficiary.objects.select_for_update().get(pk=change.beneficiary_id)
        locked = ContactChangeRequest.objects.select_for_update().get(pk=change.pk)
        if locked.status == Status.REFUSED:
            return locked
        if locked.status != Status.PENDING:
            raise ContactChangeClosed(locked.status)
        locked.status, locked.decided_by, locked.decided_at = Status.REFUSED, by, timezone.now()
        locked.save(update_fields=["status", "decided_by", "decided_at"])
    return locked


def _sign_in_form(value: str) -> str:
    return contact_parse(value).value if value else ""


def _apply(change: ContactChangeRequest, person: Beneficiary, *, by: AbstractBaseUser, now) -> None:
    """Make the change (`person` locked): the new contact, the end of every session that the
    old one may have opened, and the warning to the old one."""
    setattr(person, change.field, change.new_value)
    person.save(update_fields=[change.field])
    change.beneficiary = person
    change.status, change.decided_by, change.decided_at = Status.CONFIRMED, by, now
    change.save(update_fields=["status", "decided_by", "decided_at"])
    AppToken.objects.filter(wallet__beneficiary=person, revoked_at__isnull=True).update(
        revoked_at=now
    )
    # A code asked for either contact before the change would open the wallet as it was
    # decided then: the new contact asks for a fresh one.
    contacts = {_sign_in_form(change.old_value), _sign_in_form(change.new_value)} - {""}
    SignInCode.objects.filter(
        contact__in=contacts, used_at__isnull=True, expires_at__gt=now
    ).update(expires_at=now)
    contact_change_notify(change=change)
