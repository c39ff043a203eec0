"""Reset the second factor of anyone, a platform operator included, from the server: what an
operator does for a colleague operator (funders' administrators reset their staff's from the
staff list)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from backoffice.second_factor import second_factor_reset
from core.errors import DomainError


class Command(BaseCommand):
    help = "Remove every second factor of a person, who sets up a new one at the next sign-in."

    def add_arguments(self, parser):
        parser.add_argument("username", help="whose factors are removed")
        parser.add_argument("--by", required=True, help="the operator asking (kept in the log)")

    def handle(self, *args, username, by, **options):
        User = get_user_model()
        try:
            person = User.objects.get(username=username)
            operator = User.objects.get(username=by, is_superuser=True, is_active=True)
        except User.DoesNotExist as error:
            raise CommandError("No such person, or --by is not an active operator.") from error
        try:
            removed = second_factor_reset(user=person, by=operator)
        except DomainError as error:
            raise CommandError(str(error.message)) from error
        self.stdout.write(f"{removed} factor(s) of {username} removed.")
