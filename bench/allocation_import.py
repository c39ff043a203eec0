"""Benchmark: an allocation file of N new beneficiaries, checked then applied, against PostgreSQL.

Prints the time of each phase (reading and checking the file; granting every row in one
transaction) and of the same file uploaded and applied again, which must grant nothing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aidwallet_bench_import \
        .venv/bin/python bench/allocation_import.py [--rows 5000]

The database named in DATABASE_URL is dropped and created again: never point it at real data.
Tasks run inline (CELERY_TASK_ALWAYS_EAGER), so the figures are the work itself, not queueing.
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "true"
os.environ.setdefault("SMS_BACKEND", "notifications.channels.OutboxSMSBackend")
os.environ.setdefault("EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from bench.authorize import recreate_database


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000)
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        raise SystemExit("set DATABASE_URL to a PostgreSQL database this script may recreate")
    recreate_database(url)

    import django

    django.setup()
    from django.core.management import call_command

    from funders.imports import allocation_import_confirm, allocation_import_create
    from funders.models import Allocation, Funder
    from funders.services import program_create, program_fund
    from ledger.models import Transfer
    from tests.factories import siret

    call_command("migrate", verbosity=0)
    funder = Funder.objects.create(name="Bench", siret=siret(1), kind="departement")
    program = program_create(funder=funder, name="Aide alimentaire")
    program_fund(program=program, amount=10**10, idempotency_key="fund")
    lines = ["numero_dossier;prenom;nom;email;code_postal;montant;debut;fin"]
    lines += [
        f"D{n:06d};Camille;Martin{n};camille.martin{n}@example.org;38000;50,00;"
        "01/12/2026;31/03/2027"
        for n in range(args.rows)
    ]
    content = ("\n".join(lines) + "\n").encode()

    started = time.perf_counter()
    first = allocation_import_create(program=program, filename="first.csv", content=content)
    first.refresh_from_db()
    check_s = time.perf_counter() - started
    if first.status != "checked":
        raise SystemExit(f"the file was refused: {first.status} {first.error}")
    started = time.perf_counter()
    allocation_import_confirm(allocation_import=first)
    first.refresh_from_db()
    apply_s = time.perf_counter() - started
    grants = Allocation.objects.count()

    started = time.perf_counter()
    again = allocation_import_create(program=program, filename="again.csv", content=content)
    again.refresh_from_db()
    again_s = time.perf_counter() - started
    already = sum(
        any(error["code"] == "already_allocated" for error in row["errors"]) for row in again.report
    )

    print(f"rows: {args.rows}  file: {len(content) / 1024:.0f} KiB")
    print(f"check: {check_s:.2f} s ({args.rows / check_s:.0f} rows/s)")
    print(f"apply: {apply_s:.2f} s ({args.rows / apply_s:.0f} grants/s), status {first.status}")
    print(
        f"same file again: checked in {again_s:.2f} s, status {again.status}, "
        f"{already} rows already granted, new grants {Allocation.objects.count() - grants}"
    )
    print(f"allocate transfers: {Transfer.objects.filter(kind='allocate').count()}")


if __name__ == "__main__":
    main()
