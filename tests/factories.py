"""Test data. Models that hold money are made through the services, as in production."""

import itertools
from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from funders.models import Funder, Membership
from funders.services import allocation_create, program_create, program_fund
from merchants.services import merchant_approve, merchant_create
from wallet.models import Beneficiary, Card, Wallet
from wallet.payment_codes import payment_code_create

_sequence = itertools.count(1)


def siret(seed: int) -> str:
    """A valid SIRET (Luhn) built from a seed."""
    body = f"{seed:013d}"
    for last in "0123456789":
        candidate = body + last
        total = 0
        for index, char in enumerate(reversed(candidate)):
            value = int(char) * (2 if index % 2 else 1)
            total += value - 9 if value > 9 else value
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable: one check digit always fits")


class FunderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Funder

    name = factory.Sequence(lambda n: f"Département test {n}")
    siret = factory.Sequence(lambda n: siret(10_000 + n))
    kind = Funder.Kind.DEPARTEMENT


class BeneficiaryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Beneficiary
        skip_postgeneration_save = True

    first_name = factory.Faker("first_name", locale="fr_FR")
    last_name = factory.Faker("last_name", locale="fr_FR")
    email = factory.Sequence(lambda n: f"beneficiary{n}@example.org")
    postcode = "38000"

    @factory.post_generation
    def wallet(obj, create, extracted, **kwargs):
        if create:
            Wallet.objects.get_or_create(beneficiary=obj)


def make_program(
    *, funder=None, funded: int = 1_000_000, currency: str = "EUR", rules=None, name=None
):
    program = program_create(
        funder=funder or FunderFactory(),
        name=name or f"Aide alimentaire {next(_sequence)}",
        currency=currency,
        rules=rules or {},
    )
    if funded:
        program_fund(program=program, amount=funded, idempotency_key=f"fund-{program.pk}")
    return program


def make_allocation(
    *,
    program=None,
    beneficiary=None,
    amount: int = 10_000,
    rules=None,
    valid_from=None,
    valid_until=None,
    days: int | None = 90,
):
    """A grant valid from yesterday (or `valid_from`) for `days` (None: with no end), or until
    `valid_until`."""
    now = timezone.now()
    valid_from = valid_from or now - timedelta(days=1)
    if valid_until is None and days is not None:
        valid_until = valid_from + timedelta(days=days)
    return allocation_create(
        program=program or make_program(),
        beneficiary=beneficiary or BeneficiaryFactory(),
        amount=amount,
        valid_from=valid_from,
        valid_until=valid_until,
        rules=rules or {},
        idempotency_key=f"alloc-{next(_sequence)}",
    )


def make_merchant(*, approved: bool = True, **overrides):
    n = next(_sequence)
    fields = {
        "siret": siret(50_000 + n),
        "legal_name": f"Épicerie {n} SARL",
        "trade_name": f"Épicerie du marché {n}",
        "mcc": "5411",
        "address": "12 rue de la République",
        "postcode": "38000",
        "city": "Grenoble",
        "commune_code": "38185",
        "latitude": "45.18756",
        "longitude": "5.73569",
    }
    fields.update(overrides)
    merchant = merchant_create(**fields)
    return merchant_approve(merchant=merchant) if approved else merchant


class CardFactory(factory.django.DjangoModelFactory):
    """An active virtual card of a wallet, known to Stripe by its id."""

    class Meta:
        model = Card

    wallet = factory.LazyFunction(lambda: BeneficiaryFactory().wallet)
    kind = Card.Kind.VIRTUAL
    status = Card.Status.ACTIVE
    stripe_card_id = factory.Sequence(lambda n: f"ic_test{n}")


# The key of the authenticator app every member of staff made here has: its code of the moment
# is `totp_now(user.totpdevice_set.get())` (backoffice.second_factor).
STAFF_TOTP_KEY = "3132333435363738393031323334353637383930"


def give_second_factor(user):
    """A confirmed authenticator app with the known key STAFF_TOTP_KEY, as everyone who signs in
    to the admin must have (backoffice.second_factor)."""
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, confirmed=True, defaults={"key": STAFF_TOTP_KEY, "name": "authenticator app"}
    )
    return device


def second_factor_pass(client, user) -> None:
    """Mark the test client's session as having given its second factor, as the admin asks of
    every session (backoffice.middleware.SecondFactorRequired); the user gets an authenticator
    app if they have none. `client.force_login` does it already (tests/conftest.py)."""
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = give_second_factor(user).persistent_id
    session.save()


def make_staff(*, funder=None, role: str = Membership.Role.MANAGER, **fields):
    """A member of a funder's staff who can sign in to the admin (password: "password", then
    the code of an authenticator app with the key STAFF_TOTP_KEY)."""
    n = next(_sequence)
    user = get_user_model().objects.create_user(
        username=fields.pop("username", f"staff{n}"),
        email=f"staff{n}@example.org",
        password="password",
        is_staff=True,
        **fields,
    )
    if funder is not None:
        Membership.objects.create(user=user, funder=funder, role=role)
    give_second_factor(user)
    return user


def make_payment_code(wallet, **fields) -> str:
    """A fresh one-time payment code of `wallet`, its 10 digits: how a merchant is paid through
    the merchant API (the app shows the code, the till sends it)."""
    return payment_code_create(wallet=wallet, **fields)[1]
