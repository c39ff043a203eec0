"""What the domains announce, turned into messages to beneficiaries. Connected in
NotificationsConfig.ready(): the domains never import this floor."""

from notifications.services import (
    allocation_notify,
    captures_notify_on_commit,
    decision_notify_on_commit,
    nonuse_notify,
)


def on_allocation_granted(sender, *, allocation, **kwargs) -> None:
    allocation_notify(allocation=allocation)


def on_decision_recorded(sender, *, decision, **kwargs) -> None:
    decision_notify_on_commit(decision=decision)


def on_captures_posted(sender, *, captures, **kwargs) -> None:
    captures_notify_on_commit(captures=captures)


def on_non_use_found(sender, *, episode, **kwargs) -> None:
    nonuse_notify(episode=episode)
