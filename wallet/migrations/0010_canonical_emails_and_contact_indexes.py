"""Beneficiaries' email addresses and aidants' email contacts in their canonical form, which
sign-in now compares with "=" (it used iexact, whose UPPER() PostgreSQL folds with Unicode rules:
a look-alike address matched). An address that has no canonical form (a non-ASCII part before
the @) is left as it was: it can then match no sign-in, and the admin asks for it to be
corrected the next time the person is changed."""

from django.core.exceptions import ValidationError
from django.db import migrations, models
from django.utils import timezone

from core.validators import email_canonical


def _canonical(value: str) -> str | None:
    try:
        return email_canonical(value)
    except ValidationError:
        return None


def canonicalise_emails(apps, schema_editor):
    Beneficiary = apps.get_model("wallet", "Beneficiary")
    Aidant = apps.get_model("wallet", "Aidant")
    for pk, email in Beneficiary.objects.exclude(email="").values_list("pk", "email").iterator():
        canonical = _canonical(email)
        if canonical not in (None, email):
            Beneficiary.objects.filter(pk=pk).update(email=canonical)
    aidants = Aidant.objects.filter(channel="email").order_by("pk")
    for aidant in aidants.iterator():
        canonical = _canonical(aidant.contact)
        if canonical in (None, aidant.contact):
            continue
        twin = Aidant.objects.filter(
            wallet_id=aidant.wallet_id, contact=canonical, revoked_at__isnull=True
        )
        if aidant.revoked_at is None and twin.exists():
            # The same person authorised twice under two spellings: one authorisation stays.
            Aidant.objects.filter(pk=aidant.pk).update(revoked_at=timezone.now())
        else:
            Aidant.objects.filter(pk=aidant.pk).update(contact=canonical)


class Migration(migrations.Migration):
    dependencies = [
        ("wallet", "0009_beneficiary_erased_at"),
    ]

    operations = [
        migrations.RunPython(canonicalise_emails, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="beneficiary",
            index=models.Index(fields=["email"], name="beneficiary_email_idx"),
        ),
        migrations.AddIndex(
            model_name="beneficiary",
            index=models.Index(fields=["phone"], name="beneficiary_phone_idx"),
        ),
    ]
