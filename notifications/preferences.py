"""Which messages a beneficiary wants, on which channel.

Every kind of message goes out on every channel the person can be reached on, unless they turn
it off; a payment accepted is not sent by SMS unless they turn it on (one SMS per purchase is
too many). Some messages are always sent: a sign-in code, news of an aid granted, the answer to
a balance asked by SMS, the warning that one's contact details changed. A choice is stored only
once made; without one, the default applies."""

from collections.abc import Mapping
from dataclasses import dataclass

from django.db import transaction

from notifications.errors import PreferenceInvalid, PreferenceLocked
from wallet.models import Beneficiary
from wallet.models.notifications import Notification, NotificationPreference

Kind = Notification.Kind
Channel = Notification.Channel

ALWAYS_SENT = frozenset(
    {Kind.SIGN_IN_CODE, Kind.ALLOCATION_GRANTED, Kind.BALANCE_REPLY, Kind.CONTACT_CHANGED}
)
OFF_BY_DEFAULT = frozenset({(Kind.PAYMENT_APPROVED, Channel.SMS)})
# A reply, or the warning that one's contact details changed, is not something one subscribes
# to: it is not offered as a choice.
_NOT_A_CHOICE = frozenset({Kind.BALANCE_REPLY, Kind.CONTACT_CHANGED})


@dataclass(frozen=True)
class Preference:
    kind: str
    channel: str
    enabled: bool
    locked: bool  # always sent: the choice cannot be changed


def _default(kind: str, channel: str) -> bool:
    return (kind, channel) not in OFF_BY_DEFAULT


def channels_allowed(*, beneficiary: Beneficiary, kind: str) -> dict[str, bool]:
    """For one kind of message, whether each channel may carry it for this beneficiary."""
    if kind in ALWAYS_SENT:
        return dict.fromkeys(Channel.values, True)
    allowed = {channel: _default(kind, channel) for channel in Channel.values}
    chosen = NotificationPreference.objects.filter(beneficiary=beneficiary, kind=kind)
    allowed.update(chosen.values_list("channel", "enabled"))
    return allowed


def notification_preferences(*, beneficiary: Beneficiary) -> list[Preference]:
    """Every choice the beneficiary has, made or by default, kind by kind, in the order of
    Notification.Kind, then channel by channel."""
    chosen = {
        (kind, channel): enabled
        for kind, channel, enabled in NotificationPreference.objects.filter(
            beneficiary=beneficiary
        ).values_list("kind", "channel", "enabled")
    }
    preferences = []
    for kind in Kind.values:
        if kind in _NOT_A_CHOICE:
            continue
        locked = kind in ALWAYS_SENT
        for channel in Channel.values:
            enabled = True if locked else chosen.get((kind, channel), _default(kind, channel))
            preferences.append(Preference(kind, channel, enabled, locked))
    return preferences


def _validated(choices: Mapping) -> list[tuple[str, str, bool]]:
    if not isinstance(choices, Mapping):
        raise PreferenceInvalid()
    rows = []
    for kind, by_channel in choices.items():
        if kind not in Kind.values or kind in _NOT_A_CHOICE:
            raise PreferenceInvalid(field=str(kind))
        if not isinstance(by_channel, Mapping):
            raise PreferenceInvalid(field=kind)
        for channel, enabled in by_channel.items():
            field = f"{kind}.{channel}"
            if channel not in Channel.values or not isinstance(enabled, bool):
                raise PreferenceInvalid(field=field)
            if kind in ALWAYS_SENT:
                if not enabled:
                    raise PreferenceLocked(field=field)
                continue
            rows.append((kind, channel, enabled))
    return rows


def notification_preferences_set(
    *, beneficiary: Beneficiary, choices: Mapping[str, Mapping[str, bool]]
) -> list[Preference]:
    """Record the beneficiary's choices, {kind: {channel: on}}, for the kinds and channels
    named; the others keep theirs. All or nothing: one invalid choice changes nothing and
    raises PreferenceInvalid (unknown kind or channel, not a boolean) or PreferenceLocked (a
    message that is always sent turned off). Returns every choice, as the selector does."""
    rows = _validated(choices)
    with transaction.atomic():
        for kind, channel, enabled in rows:
            NotificationPreference.objects.update_or_create(
                beneficiary=beneficiary,
                kind=kind,
                channel=channel,
                defaults={"enabled": enabled},
            )
    return notification_preferences(beneficiary=beneficiary)
