"""Accounts' email addresses in their canonical form, which staff invitations now find people by
with "=" (they used iexact, whose UPPER() PostgreSQL folds with Unicode rules: a look-alike
address named an existing account). An address with no canonical form is left as it was."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import migrations

from core.validators import email_canonical


def canonicalise_account_emails(apps, schema_editor):
    User = apps.get_model(settings.AUTH_USER_MODEL)
    for pk, email in User.objects.exclude(email="").values_list("pk", "email").iterator():
        try:
            canonical = email_canonical(email)
        except ValidationError:
            continue
        if canonical != email:
            User.objects.filter(pk=pk).update(email=canonical)


class Migration(migrations.Migration):
    dependencies = [
        ("funders", "0005_verbose_names"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(canonicalise_account_emails, migrations.RunPython.noop)]
