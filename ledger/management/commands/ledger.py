from django.core.management.base import BaseCommand, CommandError, CommandParser

from ledger.services import verify_run_record


class Command(BaseCommand):
    help = "Ledger tools. `ledger verify` recomputes every invariant and fails if one is broken."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["verify"])

    def handle(self, *args: str, action: str, **options: object) -> None:
        problems = verify_run_record()
        for problem in problems:
            self.stderr.write(str(problem))
        if problems:
            raise CommandError(f"ledger verify: {len(problems)} problem(s) found")
        self.stdout.write("ledger verify: every invariant holds")
