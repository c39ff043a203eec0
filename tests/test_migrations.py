import importlib

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from ledger.models import Account, Entry
from ledger.verify import verify
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


# --- the ledger moves to its own app, its tables and rows where they are --------------------

BEFORE_THE_MOVE = [
    ("wallet", "0012_payment_code_failures_per_merchant"),
    ("funders", "0006_canonical_staff_emails"),
    ("merchants", "0005_merchant_review_flag"),
]


def _migrate(targets):
    """Migrate to `targets` ((app, None) unapplies an app) and return the models as they were."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state([t for t in targets if t[1] is not None]).apps


@pytest.mark.django_db(transaction=True)
def test_the_ledger_becomes_its_own_app_without_losing_a_row():
    # given a database whose ledger still belongs to the wallet app, holding money
    old = _migrate([("ledger", None), *BEFORE_THE_MOVE])
    OldAccount = old.get_model("wallet", "Account")
    OldTransfer = old.get_model("wallet", "Transfer")
    OldEntry = old.get_model("wallet", "Entry")
    funding = OldAccount.objects.create(
        code="ext:EUR", name="Funding", kind="external_funding", currency="EUR"
    )
    program = OldAccount.objects.create(
        code="program:1",
        name="Aide",
        kind="program_float",
        currency="EUR",
        guarded=True,
        balance=500,
    )
    transfer = OldTransfer.objects.create(kind="fund", currency="EUR", amount=500)
    OldEntry.objects.create(transfer=transfer, account=funding, amount=-500)
    OldEntry.objects.create(transfer=transfer, account=program, amount=500)
    ContentType.objects.get_or_create(app_label="wallet", model="account")

    # when every migration runs
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    # then the ledger's models read the same rows, its invariants hold, and the admin's log
    # and permissions still find the account's content type
    assert Account._meta.db_table == "wallet_account"
    moved = Account.objects.get(code="program:1")
    assert (moved.balance, moved.guarded) == (500, True)
    assert sorted(
        Entry.objects.filter(transfer_id=transfer.pk).values_list("amount", flat=True)
    ) == [
        -500,
        500,
    ]
    assert verify() == []
    assert ContentType.objects.filter(app_label="ledger", model="account").exists()
    assert not ContentType.objects.filter(app_label="wallet", model="account").exists()
