import importlib

import pytest
from django.apps import apps
from django.core.management import call_command

from tests.factories import BeneficiaryFactory
from wallet.models import Aidant, Beneficiary


@pytest.mark.django_db
def test_the_models_and_their_migrations_agree():
    # Exits non-zero (SystemExit) when a model change has no migration.
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
def test_the_data_migration_makes_existing_addresses_canonical():
    # given rows written before addresses were canonical (update() skips save())
    sam, lea, odd = BeneficiaryFactory.create_batch(3)
    raw = {sam.pk: "Sam.Martin@GMAIL.com", lea.pk: "lea@Bücher.DE", odd.pk: "\u017fam@gmail.com"}
    for pk, email in raw.items():
        Beneficiary.objects.filter(pk=pk).update(email=email)
    twice = [
        Aidant.objects.create(wallet=sam.wallet, contact=contact, channel="email")
        for contact in ("c.martin@ccas-grenoble.fr", "c.martin@CCAS-Grenoble.fr")
    ]
    phone_aidant = Aidant.objects.create(wallet=lea.wallet, contact="+33612345678", channel="sms")

    # when the migration runs
    wallet_migration = importlib.import_module(
        "wallet.migrations.0010_canonical_emails_and_contact_indexes"
    )
    wallet_migration.canonicalise_emails(apps, None)

    # then every address that has a canonical form is in it; the one that has none can match
    # no sign-in and is left for staff to correct; one authorisation per aidant remains
    emails = dict(Beneficiary.objects.values_list("pk", "email"))
    assert emails[sam.pk] == "sam.martin@gmail.com"
    assert emails[lea.pk] == "lea@xn--bcher-kva.de"
    assert emails[odd.pk] == "\u017fam@gmail.com"
    active = Aidant.objects.filter(wallet=sam.wallet, revoked_at__isnull=True)
    assert list(active.values_list("pk", "contact")) == [(twice[0].pk, "c.martin@ccas-grenoble.fr")]
    phone_aidant.refresh_from_db()
    assert phone_aidant.contact == "+33612345678"


@pytest.mark.django_db
def test_the_data_migration_makes_existing_account_addresses_canonical(django_user_model):
    user = django_user_model.objects.create_user("claire", "Claire.Martin@Isère.fr")

    importlib.import_module(
        "funders.migrations.0006_canonical_staff_emails"
    ).canonicalise_account_emails(apps, None)

    user.refresh_from_db()
    assert user.email == "claire.martin@xn--isre-6oa.fr"
