"""Benchmark: an allocation file of N new beneficiaries, checked then applied, against PostgreSQL.

Prints the time of each phase (reading and checking the file; granting every row in one
transaction) and of the same file uploaded and applied again, which must grant nothing.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aidwallet_bench_import \
        .venv/bin/python -m bench.allocation_import [--rows 5000]

The database named in DATABASE_URL is dropped and created again: never point it at real data.
Tasks run inline (CELERY_TASK_ALWAYS_EAGER), so the figures are the work itself, not queueing.
The exit status is 1 if the ledger does not verify afterwards.
"""

import argparse
import sys
import time

from bench import harness


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000)
    args = parser.parse_args()
    with harness.Bench("allocation-import") as bench:
        return run(bench, args)


def run(bench: harness.Bench, args: argparse.Namespace) -> int:
    bench.setup(eager_tasks=True)
    from funders.imports import allocation_import_confirm, allocation_import_create
    from funders.models import Allocation
    from ledger.models import Transfer
    from tests.factories import FunderFactory, make_program, siret

    funder = FunderFactory(name="Bench", siret=siret(1))
    program = make_program(funder=funder, name="Aide alimentaire", funded=10**10)
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
    return 0 if bench.verify_ledger() else 1


if __name__ == "__main__":
    sys.exit(main())
