"""Realistic demo data for the quick start: a département that runs food aid and mobility aid,
beneficiaries with pockets and cards, merchants in and out of its territory, past payments, and
a campaign of proactive aid whose proposals wait for an agent's decision.

Everything is written through the services, as in production, and building it twice changes
nothing (idempotency keys and natural keys), so `manage.py demo` can be run again and again."""

import random
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from backoffice.second_factor import app_key_base32, app_setup_start, recovery_codes_renew
from core.time import end_of_day, start_of_day
from funders.campaigns import campaign_create, campaign_run, profile_save
from funders.models import Allocation, Campaign, CampaignRun, Enrolment, Funder, Membership, Program
from funders.services import allocation_create, program_create, program_fund
from merchants.models import ApiKey, Merchant
from merchants.payments import payment_authorize, payment_capture
from merchants.services import api_key_create, api_key_revoke, merchant_approve, merchant_create
from wallet.models import Beneficiary, Card, Decision, Wallet
from wallet.payment_codes import payment_code_create

FIRST_NAMES = [
    "Camille",
    "Léa",
    "Manon",
    "Chloé",
    "Inès",
    "Sarah",
    "Jade",
    "Louise",
    "Emma",
    "Zoé",
    "Lucas",
    "Hugo",
    "Nathan",
    "Louis",
    "Gabriel",
    "Yanis",
    "Mohamed",
    "Théo",
    "Adam",
    "Jules",
    "Fatima",
    "Monique",
    "Bernard",
    "Josiane",
    "Ahmed",
    "Nicole",
    "Gérard",
    "Aïcha",
    "Pascal",
    "Sylvie",
    "Karim",
    "Martine",
    "Jean",
    "Brigitte",
    "Mamadou",
    "Odette",
]
LAST_NAMES = [
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefebvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Martinez",
    "Benali",
    "Diallo",
    "Nguyen",
    "Rousseau",
    "Blanc",
    "Guerin",
    "Muller",
]
POSTCODES = ["38000", "38100", "38130", "38400", "38500", "38600", "38200", "38300"]

# (SIRET, trade name, MCC, address, postcode, city, INSEE commune, latitude, longitude)
MERCHANTS = [
    (
        "44306184100047",
        "Épicerie solidaire du Vieux Temple",
        "5411",
        "4 rue du Vieux Temple",
        "38000",
        "Grenoble",
        "38185",
        "45.19302",
        "5.73086",
    ),
    (
        "38012986646850",
        "Supermarché Alpes Centre",
        "5411",
        "12 cours Berriat",
        "38000",
        "Grenoble",
        "38185",
        "45.18740",
        "5.71478",
    ),
    (
        "55210055400013",
        "Boulangerie des Arcades",
        "5462",
        "7 avenue des États-Généraux",
        "38130",
        "Échirolles",
        "38151",
        "45.14523",
        "5.71970",
    ),
    (
        "42385519600014",
        "Primeur du Marché",
        "5499",
        "2 place du Marché",
        "38500",
        "Voiron",
        "38563",
        "45.36405",
        "5.58972",
    ),
    (
        "44306184300019",
        "Pharmacie de l'Île Verte",
        "5912",
        "3 place de Verdun",
        "38000",
        "Grenoble",
        "38185",
        "45.18830",
        "5.73310",
    ),
    (
        "81409731200023",
        "Transports de l'agglomération grenobloise",
        "4111",
        "15 boulevard Joseph Vallier",
        "38100",
        "Grenoble",
        "38185",
        "45.17972",
        "5.70944",
    ),
    (
        "55204944776279",
        "Gare de Grenoble — guichets",
        "4112",
        "1 place de la Gare",
        "38000",
        "Grenoble",
        "38185",
        "45.19145",
        "5.71455",
    ),
    (
        "79305471900018",
        "Taxi Belledonne",
        "4121",
        "9 rue Ampère",
        "38400",
        "Saint-Martin-d'Hères",
        "38421",
        "45.16717",
        "5.76446",
    ),
    (
        "50321618000037",
        "Restaurant Le Chamois",
        "5812",
        "22 rue Saint-Laurent",
        "38000",
        "Grenoble",
        "38185",
        "45.19460",
        "5.73211",
    ),
    (
        "39294717500023",
        "Cave des Remparts",
        "5921",
        "5 quai Perrière",
        "38000",
        "Grenoble",
        "38185",
        "45.19536",
        "5.72748",
    ),
    (
        "47848129100043",
        "Épicerie de la Croix-Rousse",
        "5411",
        "40 boulevard de la Croix-Rousse",
        "69004",
        "Lyon",
        "69384",
        "45.77495",
        "4.82897",
    ),
    (
        "49087163500010",
        "Supermarché du Verney",
        "5411",
        "18 place du Verney",
        "73000",
        "Chambéry",
        "73065",
        "45.56924",
        "5.92134",
    ),
    (
        "52115318600015",
        "Marché couvert de Valence",
        "5499",
        "3 place Saint-Jean",
        "26000",
        "Valence",
        "26362",
        "44.93352",
        "4.89206",
    ),
]

FUNDER_SIRET = "22380001400019"
# In the range ARCEP keeps for fiction (04 65 71 xx xx): it rings nobody's phone.
FUNDER_PHONE = "+33465713838"
FOOD_RULES = {
    "categories": {"allow_groups": ["food"]},
    "zone": {"departements": ["38"]},
    "limits": {"day": 8000},
}
MOBILITY_RULES = {"categories": {"allow_groups": ["transport"]}, "zone": {"countries": ["FR"]}}


@dataclass(frozen=True)
class DemoAccess:
    username: str
    manager_username: str
    password: str
    merchant: Merchant
    api_key: str
    wallet: Wallet  # a beneficiary with food aid, who pays the demo's payment
    # The admin's second factor of each login (backoffice.second_factor): new recovery codes,
    # each good for one sign-in, and the authenticator app's key for those who add it to one.
    recovery_codes: dict[str, list[str]]
    app_keys: dict[str, str]


def _funder() -> Funder:
    funder, _ = Funder.objects.get_or_create(
        siret=FUNDER_SIRET,
        defaults={"name": "Département de l'Isère", "kind": Funder.Kind.DEPARTEMENT},
    )
    if not funder.contact_phone or not funder.sms_sender:
        funder.contact_phone = funder.contact_phone or FUNDER_PHONE
        funder.sms_sender = funder.sms_sender or "ISERE"
        funder.save(update_fields=["contact_phone", "sms_sender"])
    return funder


def _program(funder: Funder, name: str, purpose: str, rules: dict) -> Program:
    program = Program.objects.filter(funder=funder, name=name).first()
    if program is None:
        program = program_create(funder=funder, name=name, purpose=purpose, rules=rules)
    program_fund(
        program=program,
        amount=5_000_000,
        idempotency_key=f"demo:fund:{program.pk}",
        reference="Virement du 1er du mois",
    )
    return program


def _merchants() -> list[Merchant]:
    merchants = []
    for siret, name, mcc, address, postcode, city, commune, lat, lon in MERCHANTS:
        merchant = Merchant.objects.filter(siret=siret).first() or merchant_create(
            siret=siret,
            legal_name=f"{name} SAS",
            trade_name=name,
            mcc=mcc,
            address=address,
            postcode=postcode,
            city=city,
            commune_code=commune,
            latitude=lat,
            longitude=lon,
        )
        merchants.append(merchant_approve(merchant=merchant))
    return merchants


def _email_part(name: str) -> str:
    """A name as people write it in an address: "Héloïse" is "heloise", "Le Gall" is "le-gall"
    (an address's part before the @ is ASCII)."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9]+", "-", plain.lower()).strip("-")


def _beneficiaries(food: Program, mobility: Program) -> list[Beneficiary]:
    people = []
    for index, (first, last) in enumerate(zip(FIRST_NAMES, LAST_NAMES, strict=True)):
        email = f"{_email_part(first)}.{_email_part(last)}@exemple.fr"
        beneficiary, _ = Beneficiary.objects.get_or_create(
            email=email,
            defaults={
                "first_name": first,
                "last_name": last,
                "postcode": POSTCODES[index % len(POSTCODES)],
                "phone": f"+3367{index:07d}",
                "consent_given_at": timezone.now(),
            },
        )
        # Dates drawn from the person's registration, not from now: the grants' idempotency
        # keys then find the same parameters when the demo is built again another day. Whole
        # days, as funders grant: from midnight, until the end of the last day.
        day = timezone.localdate(beneficiary.created_at)
        wallet, _ = Wallet.objects.get_or_create(beneficiary=beneficiary)
        if not wallet.cards.exists():
            Card.objects.create(
                wallet=wallet,
                kind=Card.Kind.VIRTUAL,
                status=Card.Status.ACTIVE,
                last4=f"{4000 + index:04d}",
            )
        allocation_create(
            program=food,
            beneficiary=beneficiary,
            amount=15_000,
            valid_from=start_of_day(day - timedelta(days=10)),
            valid_until=end_of_day(day + timedelta(days=80)),
            idempotency_key=f"demo:food-days:{beneficiary.pk}",
        )
        if index % 2 == 0:
            allocation_create(
                program=mobility,
                beneficiary=beneficiary,
                amount=6_000,
                valid_from=start_of_day(day - timedelta(days=10)),
                valid_until=end_of_day(day + timedelta(days=170)),
                idempotency_key=f"demo:mobility-days:{beneficiary.pk}",
            )
        people.append(beneficiary)
    return people


def _past_payments(people: list[Beneficiary], merchants: list[Merchant]) -> None:
    rng = random.Random(38)
    for index, beneficiary in enumerate(people[:20]):
        merchant = rng.choice(merchants)
        decision = payment_authorize(
            merchant=merchant,
            payment_code=payment_code_create(wallet=beneficiary.wallet)[1],
            amount=rng.randrange(300, 4_500, 10),
            currency="EUR",
            idempotency_key=f"demo:payment:{index}",
        )
        if decision.approved_amount and index % 3:
            payment_capture(
                merchant=merchant, decision=decision, idempotency_key=f"demo:capture:{index}"
            )


def _winter_campaign(funder: Funder, people: list[Beneficiary]) -> None:
    """Aid proposed without being asked: the people over 60 that the département helps."""
    winter = _program(
        funder,
        "Aide hivernale des seniors",
        "Courses pour les plus de 60 ans de l'Isère, proposée sans qu'ils la demandent.",
        FOOD_RULES,
    )
    if not winter.criteria.exists():
        winter.criteria.create(kind="age", minimum=60)
        winter.criteria.create(kind="departement", values=["38"])
    for index, person in enumerate(people):
        size = 1 + index % 4
        profile_save(
            enrolment=Enrolment.objects.get(funder=funder, beneficiary=person),
            data={
                "birth_date": date(1938 + (index * 7) % 60, 1 + index % 12, 1 + index % 28),
                "household_size": size,
                "dependent_children": max(0, size - 2),
            },
            legal_basis="public_task",
            reevaluate=False,
        )
    campaign = Campaign.objects.filter(program=winter).first() or campaign_create(
        program=winter, name="Hiver 2026", amount=8_000, validity_days=120
    )
    if not campaign.runs.exists():
        campaign_run(campaign=campaign, trigger=CampaignRun.Trigger.ON_DEMAND)


def demo_build(*, password: str) -> DemoAccess:
    """Build (or top up) the demo and return what a person needs to try it."""
    with transaction.atomic():
        funder = _funder()
        food = _program(
            funder,
            "Aide alimentaire",
            "Courses alimentaires dans les commerces de l'Isère, pendant 3 mois.",
            FOOD_RULES,
        )
        mobility = _program(
            funder, "Aide à la mobilité", "Transports en commun, train et taxi.", MOBILITY_RULES
        )
        merchants = _merchants()
        people = _beneficiaries(food, mobility)
        if not Decision.objects.filter(idempotency_key__contains=":demo:payment:").exists():
            _past_payments(people, merchants)
        _winter_campaign(funder, people)

        User = get_user_model()
        user, _ = User.objects.get_or_create(
            username="admin", defaults={"is_staff": True, "is_superuser": True}
        )
        user.set_password(password)
        user.save()
        Membership.objects.get_or_create(
            user=user, funder=funder, defaults={"role": Membership.Role.ADMINISTRATOR}
        )
        # The back office as the département's social-aid team sees it: their funder only.
        manager, _ = User.objects.get_or_create(
            username="gestionnaire",
            defaults={"is_staff": True, "first_name": "Claire", "last_name": "Martin"},
        )
        manager.set_password(password)
        manager.save()
        Membership.objects.get_or_create(
            user=manager, funder=funder, defaults={"role": Membership.Role.MANAGER}
        )

        shop = merchants[0]
        for old in ApiKey.objects.filter(merchant=shop, name="demo", revoked_at__isnull=True):
            api_key_revoke(key=old)
        _, secret = api_key_create(merchant=shop, name="demo")
        wallet = (
            Wallet.objects.filter(
                pockets__allocation__program=food,
                pockets__allocation__status=Allocation.Status.ACTIVE,
            )
            .order_by("pk")
            .last()
        )
        recovery_codes, app_keys = {}, {}
        for person in (user, manager):
            device = TOTPDevice.objects.filter(user=person, confirmed=True).first()
            if device is None:
                device = app_setup_start(user=person)
                device.confirmed = True
                device.save(update_fields=["confirmed"])
            app_keys[person.username] = app_key_base32(device)
            recovery_codes[person.username] = recovery_codes_renew(user=person)
        return DemoAccess(
            "admin",
            manager.username,
            password,
            shop,
            secret,
            wallet,
            recovery_codes=recovery_codes,
            app_keys=app_keys,
        )
