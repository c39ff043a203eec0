"""The place the HTTP benchmarks pay in: one département's aid programs, merchants in four
départements and wallets of 2 or 3 pockets, built with the tests' factories, through the
services, as production would. Call after `Bench.setup()` (Django is set up there)."""

import time
from dataclasses import dataclass
from datetime import timedelta
from random import Random

API = "/api/merchant/v1"

# The programs. Every rule but the schedule varies the decisions: categories, zones, day caps.
EVERY_DAY = {"weekdays": [0, 1, 2, 3, 4, 5, 6], "hours": [["00:00", "24:00"]]}
PROGRAMS = [
    (
        "Aide alimentaire Isère",
        {
            "categories": {"allow_groups": ["food"]},
            "zone": {"departements": ["38"]},
            "schedule": EVERY_DAY,
            "limits": {"day": 8_000, "month": 60_000},
        },
    ),
    (
        "Aide à la mobilité",
        {
            "categories": {"allow_groups": ["transport"]},
            "zone": {"countries": ["FR"]},
            "schedule": EVERY_DAY,
            "limits": {"day": 4_000, "per_payment": 3_000},
        },
    ),
    (
        "Aide santé Isère-Rhône",
        {
            "categories": {"allow_groups": ["health"]},
            "zone": {"departements": ["38", "69"]},
            "schedule": EVERY_DAY,
            "limits": {"day": 10_000},
        },
    ),
]
# (trade name, MCC, postcode, INSEE commune, city, latitude, longitude, share of the traffic).
# Most payments are where the aid may be spent; the rest are declined for the place, the category
# or the amount, as happens at real tills.
MERCHANTS = [
    ("Épicerie du Cours", "5411", "38000", "38185", "Grenoble", "45.1885", "5.7245", 5),
    ("Boulangerie des Granges", "5462", "38130", "38151", "Échirolles", "45.1436", "5.7189", 3),
    ("Marché de Voiron", "5499", "38500", "38563", "Voiron", "45.3640", "5.5890", 2),
    ("Pharmacie Victor Hugo", "5912", "38000", "38185", "Grenoble", "45.1890", "5.7240", 2),
    ("TAG Grenoble", "4111", "38000", "38185", "Grenoble", "45.1910", "5.7140", 4),
    ("SNCF Lyon Part-Dieu", "4112", "69003", "69383", "Lyon", "45.7606", "4.8596", 2),
    ("Pharmacie Croix-Rousse", "5912", "69004", "69384", "Lyon", "45.7740", "4.8270", 1),
    ("Supérette Guillotière", "5411", "69007", "69387", "Lyon", "45.7500", "4.8420", 1),
    ("Carrefour Chambéry", "5411", "73000", "73065", "Chambéry", "45.5646", "5.9178", 1),
    ("Taxis Gare du Nord", "4121", "75010", "75110", "Paris", "48.8809", "2.3553", 1),
    ("Brasserie de la Bastille", "5812", "38000", "38185", "Grenoble", "45.1880", "5.7300", 1),
]
WEIGHTS = [merchant[-1] for merchant in MERCHANTS]
# Wallets are built in transactions of this many: the set-up is not measured.
WALLETS_PER_COMMIT = 200


@dataclass
class Fixture:
    wallets: list[int]
    keys: list[str]  # one API key secret per merchant, in MERCHANTS order


def merchant_siret(index: int) -> str:
    """The SIRET of MERCHANTS[index], by which a later run finds it again."""
    from tests.factories import siret

    return siret(1000 + index)


def funder_with_programs(*, rules_by_name=None) -> list:
    """The Département de l'Isère and its programs (PROGRAMS, or `rules_by_name`), funded."""
    from tests.factories import FunderFactory, make_program, siret

    funder = FunderFactory(name="Département de l'Isère", siret=siret(1))
    return [
        make_program(funder=funder, name=name, rules=rules, funded=10**11)
        for name, rules in (rules_by_name or PROGRAMS)
    ]


def merchant(index: int):
    """MERCHANTS[index], approved."""
    from tests.factories import make_merchant

    trade_name, mcc, postcode, commune, city, lat, lon, _ = MERCHANTS[index]
    return make_merchant(
        siret=merchant_siret(index),
        legal_name=f"{trade_name} SARL",
        trade_name=trade_name,
        mcc=mcc,
        address=f"{index + 1} rue de la République",
        postcode=postcode,
        city=city,
        commune_code=commune,
        latitude=lat,
        longitude=lon,
    )


def beneficiary(number: int):
    """A beneficiary of Grenoble with a wallet and no email (nothing to notify)."""
    from tests.factories import BeneficiaryFactory

    return BeneficiaryFactory(
        first_name="Bénéficiaire", last_name=f"{number:05d}", email="", postcode="38000"
    )


def build(*, wallets: int, seed: int) -> Fixture:
    """The programs, the merchants with an API key each, and `wallets` wallets with 2 or 3
    pockets of random amounts and validity."""
    from django.db import connection, transaction
    from django.utils import timezone

    from merchants.services import api_key_create
    from tests.factories import make_allocation

    started = time.perf_counter()
    rng = Random(seed)
    now = timezone.now()
    programs = funder_with_programs()
    keys = [api_key_create(merchant=merchant(i), name="till 1")[1] for i in range(len(MERCHANTS))]
    wallet_ids = []
    pockets = 0
    food, transport, health = programs
    for start in range(0, wallets, WALLETS_PER_COMMIT):
        with transaction.atomic():
            for w in range(start, min(start + WALLETS_PER_COMMIT, wallets)):
                person = beneficiary(w)
                granted = [food, transport] + ([health] if rng.random() < 0.5 else [])
                for program in granted:
                    make_allocation(
                        program=program,
                        beneficiary=person,
                        amount=rng.randrange(15_000, 60_000),
                        valid_from=now - timedelta(days=rng.randrange(1, 30)),
                        valid_until=now + timedelta(days=rng.randrange(30, 120)),
                    )
                pockets += len(granted)
                wallet_ids.append(person.wallet.pk)
    print(
        f"set-up: {len(programs)} programs, {len(keys)} merchants with API keys, "
        f"{wallets} wallets, {pockets} pockets, in {time.perf_counter() - started:.1f} s"
    )
    analyze()
    connection.close()
    return Fixture(wallets=wallet_ids, keys=keys)


def reuse(*, wallets: int) -> Fixture:
    """The fixture of an earlier build, with a new API key per merchant (the old secrets are
    stored hashed). The earlier runs' keys are revoked first: a merchant may hold only
    MERCHANT_API_KEYS_MAX active keys, and each run adds one."""
    from django.db import connection

    from merchants.models import Merchant
    from merchants.services import api_key_create, api_key_revoke
    from wallet.models import Wallet

    keys = []
    for i, (trade_name, *_rest) in enumerate(MERCHANTS):
        found = Merchant.objects.filter(siret=merchant_siret(i), trade_name=trade_name).first()
        if found is None:
            raise SystemExit("--reuse: this database was not built by this script; run without it")
        for old in found.api_keys.filter(revoked_at__isnull=True):
            api_key_revoke(key=old)
        keys.append(api_key_create(merchant=found, name="till 1")[1])
    wallet_ids = list(Wallet.objects.order_by("pk").values_list("pk", flat=True)[:wallets])
    if len(wallet_ids) < wallets:
        raise SystemExit(
            f"--reuse: the database has {len(wallet_ids)} wallets, fewer than --wallets"
        )
    # Earlier runs added holds and decisions since the statistics were taken: a statement
    # planned on the old ones (the hot path's, once per connection) can read through the wrong
    # index (BENCHMARKS.md, issue 19 part 11).
    analyze()
    connection.close()
    print(f"reused: {len(wallet_ids)} wallets, {len(keys)} new API keys")
    return Fixture(wallets=wallet_ids, keys=keys)


def merchant_pks() -> list[int]:
    """The primary keys of MERCHANTS, in order."""
    from merchants.models import Merchant

    return [Merchant.objects.get(siret=merchant_siret(i)).pk for i in range(len(MERCHANTS))]


def analyze() -> None:
    """Statistics of every table: fresh tables have none, and tables that grew since keep the
    old ones where autovacuum does not run (the benchmark machines' PostgreSQL runs without it);
    in production autovacuum gathers them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def wait_ready(bench, server, port: int, key: str) -> None:
    """Until the merchant API answers a listing with the merchant's key."""
    bench.wait_ready(
        server,
        port,
        path=f"{API}/authorizations?limit=1",
        headers={"Authorization": f"Bearer {key}"},
    )


def payment_code(wallet_id: int) -> str:
    """A fresh one-time code of the wallet, as its app shows it to the till."""
    from tests.factories import make_payment_code
    from wallet.models import Wallet

    return make_payment_code(Wallet(pk=wallet_id))
