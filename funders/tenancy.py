"""Who may see and do what on the funder side.

A funder's staff see only their funder's records. What they may do there grows with their role:
an agent reads beneficiaries and payments and helps people; a manager also runs programs,
rules, funding and allocations; an administrator also manages the staff. A platform operator
(a superuser) sees every funder and may do everything.

Every admin page, form choice, action and export asks these functions, so one place says who
reaches what."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from funders.models import Funder, Membership

Role = Membership.Role

# What each role includes, weakest first.
RANK = {Role.AGENT: 1, Role.MANAGER: 2, Role.ADMINISTRATOR: 3}


def is_operator(user: AbstractBaseUser) -> bool:
    return bool(user.is_active and user.is_superuser)


def funder_ids(user: AbstractBaseUser, *, role: str = Role.AGENT) -> set[int]:
    """The funders where the user holds `role` or a stronger one. Read once per request: the
    admin asks this many times while it draws a page."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return set()
    cache = user.__dict__.setdefault("_funder_roles", None)
    if cache is None:
        cache = dict(Membership.objects.filter(user=user).values_list("funder_id", "role"))
        user.__dict__["_funder_roles"] = cache
    return {funder for funder, held in cache.items() if RANK[held] >= RANK[role]}


def funders_of(user: AbstractBaseUser, *, role: str = Role.AGENT) -> QuerySet[Funder]:
    if is_operator(user):
        return Funder.objects.all()
    return Funder.objects.filter(pk__in=funder_ids(user, role=role))


def has_role(user: AbstractBaseUser, *, role: str, funder: Funder | int | None = None) -> bool:
    """Whether the user holds `role` (or stronger) at `funder`, or at any funder when None."""
    if is_operator(user):
        return True
    held = funder_ids(user, role=role)
    if funder is None:
        return bool(held)
    return (funder.pk if isinstance(funder, Funder) else funder) in held
